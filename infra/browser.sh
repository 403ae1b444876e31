#!/usr/bin/env bash
# The headless browser the wallboard test drives.
#
#   infra/browser.sh ensure   install Debian's chromium when /usr/bin/chromium is missing
#   infra/browser.sh path     print the browser's path (exit 1 when it is missing)
#
# Debian's package, not `playwright install`: that one downloads its own browser
# build from a CDN, and the machines of this project have no internet besides the
# Debian mirror. The Python playwright package drives this chromium through
# executable_path (tests/test_wallboard.py).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=apt.sh
source "$HERE/apt.sh"

CHROMIUM=/usr/bin/chromium
# A fresh minimal image may have no font at all, and --no-install-recommends skips
# the ones chromium suggests: without one, every digit on the wallboard is a box.
PACKAGES=(chromium fonts-dejavu-core)

cmd_ensure() {
    # apt_ensure takes a command name or, as here, an absolute path.
    apt_ensure "$CHROMIUM" "${PACKAGES[@]}"
    echo "browser.sh: $("$CHROMIUM" --version 2>/dev/null || echo chromium) ready" >&2
}

case "${1:-}" in
    ensure) cmd_ensure ;;
    path)
        [[ -x $CHROMIUM ]] || { echo "browser.sh: $CHROMIUM is missing" >&2; exit 1; }
        echo "$CHROMIUM"
        ;;
    *)
        echo "usage: $0 ensure|path" >&2
        exit 2
        ;;
esac
