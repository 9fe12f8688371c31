#!/usr/bin/env bash
# Installs what Marina's build and tests need on a fresh Debian machine and
# checks the Go toolchain. Idempotent: a second run only checks.
set -euo pipefail

need_pkgs=()
for cmd in make git gcc awk cmp; do
  command -v "$cmd" >/dev/null 2>&1 || need_pkgs+=("$cmd")
done
if ((${#need_pkgs[@]})); then
  pkgs=()
  for cmd in "${need_pkgs[@]}"; do
    case "$cmd" in
      cmp) pkgs+=(diffutils) ;;
      awk) pkgs+=(gawk) ;;
      *) pkgs+=("$cmd") ;;
    esac
  done
  echo "installing Debian packages: ${pkgs[*]}"
  if [ "$(id -u)" != 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1; then
  echo "Go is not installed: Marina needs Go 1.26 or newer on PATH" >&2
  exit 1
fi
want=1.26
have=$(go env GOVERSION | sed -E 's/^go([0-9]+\.[0-9]+).*/\1/')
if [ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" != "$want" ]; then
  echo "Go $have is too old: Marina needs Go $want or newer" >&2
  exit 1
fi
