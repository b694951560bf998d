#!/usr/bin/env bash
# Installs what ctseg needs on Debian 12: compilers, meson, Boost (Hana, Test),
# oneTBB, nlohmann-json, the image libraries of the data layer (libpng,
# libtiff, niftilib), the brain MRI of mricron-data (demo, sparse3d example,
# tests), the Python readers the tests compare against (numpy, nibabel,
# tifffile, PIL) and, with --with-torch, PyTorch for the equivalence tests.
set -euo pipefail
packages=(g++ meson ninja-build pkg-config libboost-dev libboost-test-dev libtbb-dev nlohmann-json3-dev time libpng-dev libtiff-dev zlib1g-dev libniftiio-dev mricron-data python3 python3-numpy python3-nibabel python3-tifffile python3-pil)
case "${1:-}" in
  "" | --demo) ;;  # the demo needs nothing beyond the base set
  --with-torch) packages+=(python3-torch) ;;
  *) echo "install-deps.sh: unknown option '$1' (use --with-torch or --demo)" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
