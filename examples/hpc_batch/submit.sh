#!/bin/bash
# Submit the whole array workflow with dependencies:
#   1. a short job runs `fastgmm warmup` into the shared NUMBA_CACHE_DIR;
#   2. the array job (fastgmm_array.sbatch) starts once the warmup succeeded;
#   3. collect.py reads every task's JSON and picks K by BIC once all tasks succeeded.
#
#   cd examples/hpc_batch && ./submit.sh
#   FASTGMM_DATA=/scratch/me/X.npy FASTGMM_KS="2 4 8 16 32" ./submit.sh
set -euo pipefail
cd "$(dirname "$0")"

export FASTGMM_KS=${FASTGMM_KS:-"1 2 3 4 5 6 7 8 9 10"}
export FASTGMM=${FASTGMM:-fastgmm}
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR-$HOME/.cache/fastgmm-numba}"
# One directory for the whole run (the array tasks would otherwise each name their own).
export FASTGMM_OUT=${FASTGMM_OUT:-$PWD/results/run-$(date +%Y%m%d-%H%M%S)}
PYTHON=${PYTHON:-python3}
read -r -a K_LIST <<<"$FASTGMM_KS"
mkdir -p "$FASTGMM_OUT"

# sbatch exports this shell's environment (the variables above included) to every job.
warmup=$(sbatch --parsable --job-name=fastgmm-warmup --cpus-per-task=2 --time=00:30:00 \
    --output="$FASTGMM_OUT/warmup-%j.log" \
    --wrap="$FASTGMM warmup --json >'$FASTGMM_OUT/warmup.json'")
warmup=${warmup%%;*} # --parsable prints "id;cluster" on multi-cluster sites
array=$(sbatch --parsable --dependency="afterok:$warmup" --array="1-${#K_LIST[@]}" \
    --output="$FASTGMM_OUT/fastgmm-k-%A_%a.log" fastgmm_array.sbatch)
array=${array%%;*}
collect=$(sbatch --parsable --dependency="afterok:$array" --job-name=fastgmm-collect \
    --time=00:10:00 --output="$FASTGMM_OUT/collect-%j.log" \
    --wrap="$PYTHON '$PWD/collect.py' '$FASTGMM_OUT'")
collect=${collect%%;*}

echo "submitted: warmup $warmup -> array $array (K = $FASTGMM_KS) -> collect $collect"
echo "results in $FASTGMM_OUT (summary.json once collect has run)"
