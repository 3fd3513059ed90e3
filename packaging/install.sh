#!/bin/sh
# Puts the `rampart` command on PATH, with its systemd units, an example configuration, shell
# completion and fail2ban's action.d/rampart.conf (where fail2ban is installed). Run from a
# checkout (or an unpacked npm tarball) as root:
#
#   packaging/install.sh            # npm pack, then npm install -g of that tarball into PREFIX
#   packaging/install.sh --link     # link PREFIX/bin/rampart to this checkout's dist/cli/main.js
#
# Options: --prefix DIR (default /usr: the units call /usr/bin/rampart), --root DIR (stage into
# DIR, for packagers), --no-units, --dry-run (print the commands only).
set -eu

prefix=/usr
root=
mode=pack
units=yes
dry=
while [ $# -gt 0 ]; do
  case "$1" in
    --link) mode=link ;;
    --prefix) prefix=$2; shift ;;
    --root) root=$2; shift ;;
    --no-units) units=no ;;
    --dry-run) dry=echo ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

src=$(cd "$(dirname "$0")/.." && pwd)
bin="$root$prefix/bin"
run() { $dry "$@"; }

if [ ! -f "$src/dist/cli/main.js" ]; then
  echo "install.sh: $src/dist/cli/main.js is missing: run \"npm ci\" (or \"npm run build\") first" >&2
  exit 2
fi

run mkdir -p "$bin"
if [ "$mode" = link ]; then
  # The checkout stays where it is (with its node_modules); the command points into it.
  run chmod 755 "$src/dist/cli/main.js"
  run ln -sfn "$src/dist/cli/main.js" "$bin/rampart"
else
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  tarball=$(cd "$src" && npm pack --silent --ignore-scripts --pack-destination "$tmp" | tail -n 1)
  run npm install --global --prefix "$root$prefix" "$tmp/$tarball"
fi

if [ "$units" = yes ]; then
  run mkdir -p "$root/etc/systemd/system" "$root/etc/rampart"
  for u in "$src"/packaging/systemd/*.service; do
    run install -m 0644 "$u" "$root/etc/systemd/system/"
  done
  # Never overwrite an operator's configuration.
  if [ ! -e "$root/etc/rampart/rampart.yaml" ]; then
    run install -m 0644 "$src/config/rampart.example.yaml" "$root/etc/rampart/rampart.yaml"
  fi
fi

# Where fail2ban is installed, its jails can ban through rampart (action = rampart[...]). Our file
# is replaced on every run, as a package would; operators change it in rampart.local.
if [ -d "$root/etc/fail2ban/action.d" ]; then
  run install -m 0644 "$src/packaging/fail2ban/action.d/rampart.conf" "$root/etc/fail2ban/action.d/rampart.conf"
fi

completions="$root$prefix/share/bash-completion/completions"
zsh="$root$prefix/share/zsh/vendor-completions"
run mkdir -p "$completions" "$zsh"
if [ -z "$dry" ]; then
  node "$src/dist/cli/main.js" completion bash > "$completions/rampart"
  node "$src/dist/cli/main.js" completion zsh > "$zsh/_rampart"
fi

echo "rampart installed: $prefix/bin/rampart${root:+ (staged in $root)}"
[ "$units" = yes ] && echo "next: edit /etc/rampart/rampart.yaml, then: systemctl daemon-reload && systemctl enable --now rampart"
exit 0
