/*
 * driver.h - engramc's command line: build | run | check | fmt.
 */
#ifndef ENGRAM_DRIVER_H
#define ENGRAM_DRIVER_H

/* Runs engramc with its command line; returns the process exit code
 * (ENGRAM_EXIT_* from engram_rt.h: 0 ok, 1 model errors, 2 usage, 3 I/O). */
int driver_main(int argc, char **argv);

#endif
