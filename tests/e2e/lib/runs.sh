# runs.sh - shell helpers shared by the end-to-end scripts that run
# simulators and compare their outputs (scaling_equality.sh, protocol.sh,
# determinism.sh).
# Source it after setting: tmp (a scratch folder), PY (python with h5py) and
# lib (tests/e2e/lib).  Counts results in pass / fail.
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

# Where mpirun may run as root with more ranks than cores; Open MPI's own
# allocations show up as leaks under LSan (toolchain.md 7), memory errors
# are still checked; every mpirun is bounded by a timeout.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# Ranks that wait yield the core: ctest -j2 runs two MPI tests at once, up
# to six ranks on two cores, and busy-polling ranks then starve each other
# (a 4 s run hit the 120 s bound in CI).
export OMPI_MCA_mpi_yield_when_idle=1
mpi_env=(env ASAN_OPTIONS=detect_leaks=0)
MPIRUN=(timeout -k 10 300 mpirun --allow-run-as-root --oversubscribe -x ASAN_OPTIONS
        -x OMPI_MCA_mpi_yield_when_idle)

run() {   # run NAME CMD...: CMD --out $tmp/NAME --quiet must succeed
    local name=$1; shift
    echo "+ $* --out \$tmp/$name"
    local rc=0
    "$@" --out "$tmp/$name" --quiet >"$tmp/$name.log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || { cat "$tmp/$name.log"; bad "$name: exit status $rc"; return 1; }
}

# same REF NAME: every output file REF has is byte-identical in NAME, and
# summary.json is equal outside "timing".
same() {
    local a=$tmp/$1 b=$tmp/$2 f
    for f in spikes.h5 weights.h5 trials.csv; do
        [ -f "$a/$f" ] || continue
        if cmp -s "$a/$f" "$b/$f"; then ok "$2: $f byte-identical to $1"
        else bad "$2: $f differs from $1"; fi
    done
    if $PY "$lib/same_summary.py" "$a/summary.json" "$b/summary.json" >"$tmp/cmp.log" 2>&1; then
        ok "$2: summary.json equal to $1 outside timing"
    else
        cat "$tmp/cmp.log"; bad "$2: summary.json differs from $1"
    fi
}

# expect_fail NAME CODE PATTERN CMD...: exits with CODE and says PATTERN;
# prints the number of "error:" lines last.
expect_fail() {
    local name=$1 code=$2 pat=$3; shift 3
    local rc=0
    "$@" --out "$tmp/$name" --quiet >"$tmp/$name.log" 2>&1 || rc=$?
    local n
    n=$(grep -c "error:" "$tmp/$name.log" || true)
    if [ "$rc" -eq "$code" ] && grep -q -- "$pat" "$tmp/$name.log" && [ "$n" -ge 1 ]; then
        ok "$name: exit $rc, message '$pat' ($n error line(s))"
    else
        cat "$tmp/$name.log"; bad "$name: exit $rc (want $code), '$pat'"
    fi
    echo "$n"
}
