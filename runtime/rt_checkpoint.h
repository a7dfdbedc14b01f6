/* rt_checkpoint.h - checkpoints of the full network state (docs/outputs.md, "Checkpoints"). */
#ifndef ENGRAM_RT_CHECKPOINT_H
#define ENGRAM_RT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "rt_engine.h"

#define ENGRAM_CHECKPOINT_MAGIC "ENGRAMCK"     /* first 8 bytes of the userblock */
#define ENGRAM_CHECKPOINT_VERSION 1u
#define ENGRAM_CHECKPOINT_USERBLOCK 512u       /* the HDF5 file starts here */

/* Writes the state of `net` at the start of step `step` (everything the run
 * from `step` on depends on) plus `extra` opaque bytes (the protocol
 * position, measure buffers) to `path`, atomically (temporary file in the
 * same directory, fsync, rename).  Collective over ranks: rank 0 writes;
 * every rank calls it with the same arguments (extra may differ, only rank 0's is written). */
int engram_checkpoint_write(EngramNetwork *net, const char *path, int64_t step,
                            const void *extra, size_t extra_len, EngramError *err);

/* Reads a checkpoint into a network already built from the same model and
 * parameters (any number of ranks and threads, not necessarily those that
 * wrote it), sets net->step_begin to its step, and returns the extra bytes
 * (malloc'd, caller frees; NULL/0 when none).  Collective.  Refuses (ENGRAM_EXIT_MODEL
 * or ENGRAM_EXIT_IO, one clear message naming the file and what is wrong) a file
 * that is not a checkpoint, is truncated or corrupt (checksum), or belongs to another model
 * (model sha256 from the blob header) or other sizes (population sizes, synapse counts per
 * projection, dt, precision, seed).  The checksums, model, sizes and settings are
 * checked before the network is touched; a later failure (other synapses with the
 * same counts, a read error) leaves the network partly restored: free it. */
int engram_checkpoint_read(EngramNetwork *net, const char *path, void **extra, size_t *extra_len,
                           EngramError *err);

/* Puts back the dynamical state saved in a checkpoint of this run (neuron
 * state and pending input, weights and synapse variables, traces, spikes in
 * flight, modulator levels) as if it had been saved at step `now`: lazy
 * step stamps and pending input move by now - (its step).  The clock,
 * sources, recordings, statistics, plasticity switches and pending releases
 * stay as they are (the protocol statement `restore`).  Collective. */
int engram_checkpoint_restore_state(EngramNetwork *net, const char *path, int64_t now,
                                    EngramError *err);

/* Checks the userblock header and both checksums of a checkpoint without
 * opening it with HDF5 (engram_checkpoint_read does this first).  Local to
 * the calling rank; ENGRAM_EXIT_IO with the reason. */
int engram_checkpoint_verify(const char *path, EngramError *err);

#endif
