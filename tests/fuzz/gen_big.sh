#!/bin/sh
# gen_big.sh DIR - writes the two oversized inputs the front end must refuse
# quickly and cleanly, so they never need to be committed:
#   DIR/big_100mb.engram   a valid-looking 100 MB model (over SOURCE_MAX_BYTES:
#                          "file is too large (100 MB; the limit is 64 MB)")
#   DIR/nested_100k.engram a parameter with 100 000 nested parentheses
#                          ("nesting is too deep (the limit is 256 levels)")
# Usage: tests/fuzz/gen_big.sh /tmp/engram-big && engramc check /tmp/engram-big/big_100mb.engram
set -eu
dir=${1:?usage: gen_big.sh DIR}
mkdir -p "$dir"

big="$dir/big_100mb.engram"
printf 'model big\n' > "$big"
# 32 bytes per line; 3 276 800 lines make 100 MiB (plus the model line)
yes 'param p = 1 ms * 2 + 3 ms / 4  ' | head -n 3276800 | tr -d '\r' >> "$big"

nested="$dir/nested_100k.engram"
{
    printf 'model nested\nparam x = '
    head -c 100000 /dev/zero | tr '\0' '('
    printf '1'
    head -c 100000 /dev/zero | tr '\0' ')'
    printf '\n'
} > "$nested"
echo "wrote $big ($(wc -c < "$big") bytes) and $nested"
