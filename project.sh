#!/usr/bin/env bash
# The project's two entry points, for a fresh Debian/Ubuntu machine as root:
#   ./project.sh main   set everything up, then run the main job (nvsim GPUs + nvctl)
#   ./project.sh test   set everything up, then run the whole test suite
#   ./project.sh setup  set everything up only
# Set-up is idempotent: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
ROOT=$PWD
VENV=$ROOT/.venv

APT_PACKAGES=(
  gcc libc6-dev make python3 python3-venv python3-dev
  runc crun umoci skopeo podman buildah docker-registry
  busybox-static debootstrap golang-github-opencontainers-specs-dev podman-compose
  iproute2 curl procps util-linux kmod tar gzip ca-certificates valgrind btrfs-progs
  netavark aardvark-dns nftables iptables
  chromium prometheus openssh-server openssh-client systemd
)

log() { if [ -t 2 ]; then printf '\033[1m==> %s\033[0m\n' "$*" >&2; else printf '==> %s\n' "$*" >&2; fi; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "project.sh must run as root (it installs packages and runs containers)" >&2
    exit 4
  fi
}

install_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Whether every user may run this file: it and each directory above it are world-executable.
# The console scripts (nvctl, bolt, nvsim) start the venv's interpreter, so an interpreter
# under a root-only home (pyenv in /root) would make them unusable for everyone else.
world_runnable() {
  local p
  p=$(readlink -f "$1") || return 1
  while [ "$p" != / ]; do
    [ "$(( 0$(stat -c %a "$p") & 1 ))" = 1 ] || return 1
    p=$(dirname "$p")
  done
}

# A Python >= 3.11: $PYTHON, else the system's interpreters (/usr/bin first: they are
# runnable by every user), else the newest python3.X on PATH, else Debian/Ubuntu's
# python3.11 (Ubuntu 22.04 ships 3.10 as python3 but has python3.11 in its archive).
find_python() {
  local cand path fallback=""
  for cand in ${PYTHON:-} /usr/bin/python3 /usr/bin/python3.13 /usr/bin/python3.12 \
    /usr/bin/python3.11 python3 python3.13 python3.12 python3.11; do
    path=$(command -v "$cand" 2>/dev/null) || continue
    "$path" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
      continue
    if [ -n "${PYTHON:-}" ] || world_runnable "$path"; then
      echo "$path"
      return
    fi
    fallback=${fallback:-$path}
  done
  if [ -n "$fallback" ]; then
    log "warning: $fallback is not runnable by other users; the tools will work for root only"
    echo "$fallback"
    return
  fi
  log "apt: installing python3.11 (python3 here is older than 3.11)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3.11 python3.11-venv python3.11-dev >/dev/null
  echo /usr/bin/python3.11
}

install_venv() {
  local py
  py=$(find_python)
  if [ -x "$VENV/bin/python" ] && ! world_runnable "$VENV/bin/python" && world_runnable "$py"; then
    log "venv: $VENV uses an interpreter other users cannot run; recreating it with $py"
    rm -rf "$VENV"
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    log "venv: creating $VENV"
    "$py" -m venv "$VENV"
  fi
  local stamp=$VENV/.installed
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    log "venv: installing the project and its test dependencies"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e ".[test]"
    touch "$stamp"
  fi
}

# The wheels the nvctl ct stack's base image installs offline: this project's own wheel and
# every dependency's, for Debian bookworm's CPython 3.11 (downloaded here, never at start).
build_wheels() {
  local dir=$ROOT/build/wheels stamp=$ROOT/build/wheels/.made
  if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ -z "$(find src -newer "$stamp" -name '*.py' -print -quit)" ]; then
    return
  fi
  log "wheels: the project and its dependencies for the nvctl ct images ($dir)"
  if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
    rm -f "$dir"/nvcontrol_bolt-*.whl   # only the project changed: keep its dependencies
  else
    rm -rf "$dir"
  fi
  mkdir -p "$dir"
  "$VENV/bin/pip" wheel -q --no-deps -w "$dir" "$ROOT" 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/pip" download -q -d "$dir" --only-binary=:all: --python-version 3.11 \
    --implementation cp --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform linux_x86_64 \
    "$dir"/nvcontrol_bolt-*.whl 2>&1 | grep -v '^WARNING: Location' || true
  ls "$dir"/nvcontrol_bolt-*.whl >/dev/null
  touch "$stamp"
}

build_nvsim() {
  log "nvsim: building libnvidia-ml.so.1"
  "$VENV/bin/nvsim" build
}

# Bytecode for every module, once: with PYTHONDONTWRITEBYTECODE set (as on these machines)
# Python never caches it itself, and each CLI call would compile its modules again.
compile_bytecode() {
  "$VENV/bin/python" -m compileall -q -j 0 "$ROOT/src" >/dev/null
}

setup() {
  need_root
  install_apt
  install_venv
  compile_bytecode
  build_nvsim
  build_wheels
}

main_job() {
  export NVSIM_STATE=${NVSIM_STATE:-/run/nvsim}
  local nvsim=$VENV/bin/nvsim nvctl=$VENV/bin/nvctl
  "$nvctl" ct stop >/dev/null 2>&1 || true   # a previous run's stack uses the old instance
  "$nvsim" down >/dev/null 2>&1 || true      # a fresh instance every time
  log "nvsim: starting two virtual RTX 4090s in $NVSIM_STATE"
  "$nvsim" up --gpus 2 --model rtx4090
  eval "$("$nvsim" env)"
  log "nvctl ct start   (the GPU management stack; the first run builds its images)"
  "$nvctl" ct start
  log "nvctl ct status"
  "$nvctl" ct status
  log "dashboard: http://127.0.0.1:8080/   (metrics: http://127.0.0.1:8080/metrics)"
  log "both keep running: eval \"\$($nvsim env)\"; $nvctl ct stop; $nvsim down to stop them"
}

run_tests() {
  export PATH=$VENV/bin:$PATH
  log "lint: ruff + mypy"
  ruff check src tests bench
  ruff format --check src tests bench
  mypy
  log "tests"
  # Two workers: the tests that touch what the host has once run on one of them, one at a
  # time; the self-contained ones run beside them (tests/parallel.py).
  pytest -q -p no:cacheprovider -n 2 --dist loadgroup "$@"
}

cmd=${1:-}
shift || true
case "$cmd" in
  setup) setup ;;
  main) setup; main_job ;;
  test) setup; run_tests "$@" ;;
  *) echo "usage: $0 main|test|setup" >&2; exit 2 ;;
esac
