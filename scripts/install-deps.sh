#!/usr/bin/env bash
# Installs what ctseg needs on Debian 12: compilers, meson, Boost (Hana, Test),
# oneTBB, nlohmann-json, and, for the tests against PyTorch, python3-torch.
set -euo pipefail
packages=(g++ meson ninja-build pkg-config libboost-dev libboost-test-dev libtbb-dev nlohmann-json3-dev time)
if [ "${1:-}" = "--with-torch" ]; then packages+=(python3 python3-numpy python3-torch); fi
if [ "${1:-}" = "--demo" ]; then packages+=(python3 python3-numpy); fi
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
