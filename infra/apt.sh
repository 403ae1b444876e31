#!/usr/bin/env bash
# Install a Debian package only when the command it provides is missing.
#
#   infra/apt.sh ensure <command> <debian-package> [more packages...]
#
# Can also be sourced; then call `apt_ensure <command> <package>...`.
# Machines of this project are fresh on every change, so every tool the stack
# needs has to be installable from its own scripts.
set -euo pipefail

# One `apt-get update` per run of the calling script: it is slow and the
# package lists do not change between two installs a few seconds apart.
_APT_UPDATED="${_APT_UPDATED:-0}"

_apt_sudo() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "apt.sh: need root (or sudo) to run: $*" >&2
        return 1
    fi
}

apt_ensure() {
    local cmd="$1"
    shift
    if [[ $# -eq 0 ]]; then
        echo "usage: apt.sh ensure <command> <debian-package>..." >&2
        return 2
    fi
    if command -v "$cmd" >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "apt.sh: '$cmd' is missing and apt-get is not available;" \
            "install the package(s) '$*' with your system's package manager." >&2
        return 1
    fi
    echo "apt.sh: '$cmd' not found, installing Debian package(s): $*" >&2
    if [[ "$_APT_UPDATED" != 1 ]]; then
        _apt_sudo apt-get update -qq >&2
        _APT_UPDATED=1
        export _APT_UPDATED
    fi
    # Debian packages with a daemon (redis-server, prometheus) start a system
    # service on their default port as part of the install. The stack runs its
    # own instances on private ports, so a policy-rc.d that forbids service
    # starts is put in place for the duration of the install (only when none
    # exists, and removed afterwards).
    local policy=/usr/sbin/policy-rc.d placed=0
    if [[ ! -e $policy ]]; then
        if _apt_sudo sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"; then
            placed=1
        fi
    fi
    local rc=0
    _apt_sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >&2 || rc=$?
    if [[ $placed == 1 ]]; then
        _apt_sudo rm -f "$policy"
    fi
    if [[ $rc -ne 0 ]]; then
        echo "apt.sh: apt-get install $* failed (exit $rc)" >&2
        return "$rc"
    fi
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "apt.sh: installed $* but '$cmd' is still not on PATH" >&2
        return 1
    fi
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    case "${1:-}" in
        ensure)
            shift
            if [[ $# -lt 2 ]]; then
                echo "usage: $0 ensure <command> <debian-package>..." >&2
                exit 2
            fi
            apt_ensure "$@"
            ;;
        *)
            echo "usage: $0 ensure <command> <debian-package>..." >&2
            exit 2
            ;;
    esac
fi
