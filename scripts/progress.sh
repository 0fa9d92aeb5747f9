# shellcheck shell=bash
# One line per finished step of a long run (make loadtest, make faults), with a
# running count and a rough time left: the mean step so far times the steps to go.
#   . scripts/progress.sh
#   progress_start TOTAL NAME
#   progress_step "what just finished"

progress_start() {
  progress_total=$1 progress_name=$2 progress_done=0 progress_t0=$SECONDS
}

progress_step() {
  progress_done=$((progress_done + 1))
  local elapsed=$((SECONDS - progress_t0)) left=0
  left=$((elapsed * (progress_total - progress_done) / progress_done))
  printf '%s: [%d/%d] %s · %ds elapsed · ~%ds left\n' \
    "$progress_name" "$progress_done" "$progress_total" "$1" "$elapsed" "$left" >&2
}
