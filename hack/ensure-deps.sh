#!/usr/bin/env bash
# Installs what Marina's build and tests need on a fresh Debian machine and
# checks the Go toolchain. Idempotent: a second run only checks.
set -euo pipefail

# command → Debian package. The node packages run the local environment's
# nodes (containerd, runc, CNI plugins, iptables for kube-proxy, iptables and
# ipset for kube-router's NetworkPolicy controller).
declare -A pkg_of=(
  [make]=make [git]=git [gcc]=gcc [awk]=gawk [cmp]=diffutils [nsenter]=util-linux [ip]=iproute2
  [containerd]=containerd [runc]=runc [/usr/lib/cni/bridge]=containernetworking-plugins
  [iptables]=iptables [conntrack]=conntrack [ipset]=ipset
)
pkgs=()
for cmd in "${!pkg_of[@]}"; do
  if [[ $cmd == /* ]]; then [ -e "$cmd" ] && continue; else command -v "$cmd" >/dev/null 2>&1 && continue; fi
  pkgs+=("${pkg_of[$cmd]}")
done
if ((${#pkgs[@]})); then
  echo "installing Debian packages: ${pkgs[*]}"
  if [ "$(id -u)" != 0 ]; then sudo=sudo; else sudo=; fi
  # Packages such as containerd would start a host-wide daemon on install;
  # the local environment runs its own, one per node, and nothing else.
  guard=/usr/sbin/policy-rc.d
  guard_added=
  if [ ! -e "$guard" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$guard" >/dev/null && $sudo chmod +x "$guard" && guard_added=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  [ -n "$guard_added" ] && $sudo rm -f "$guard"
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
