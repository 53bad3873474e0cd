#!/usr/bin/env bash
# The device tool (GPU sessions) sends the checkout's tracked and untracked-not-ignored files, at
# most 64 MiB, and the shipped weights alone are more. Around a device call:
#   tools/device_tree.sh hide      weights/ out of git's index and ignored here (files stay on disk)
#   tools/device_tree.sh size      what a call would send, in bytes (must be under 64 MiB)
#   tools/device_tree.sh restore   weights/ back in the index, the local ignore rule removed
# Restore before committing anything: a commit made while hidden would delete the weights.
set -euo pipefail
cd "$(dirname "$0")/.."
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
touch "$exclude"
case "${1:-}" in
  hide)
    git rm -r -q --cached weights
    grep -qx '/weights/' "$exclude" || echo '/weights/' >>"$exclude"
    echo "weights/ hidden from device calls; run '$0 restore' before any commit" >&2
    ;;
  restore)
    sed -i '\#^/weights/$#d' "$exclude"
    git reset -q -- weights
    ;;
  size)
    { git ls-files -z; git ls-files -z --others --exclude-standard; } \
      | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {print s + 0}'
    ;;
  *)
    echo "usage: $0 hide|size|restore" >&2
    exit 2
    ;;
esac
