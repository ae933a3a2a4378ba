#!/usr/bin/env bash
# release.sh: build a plugin for every platform packer runs on, with nothing
# but the Go toolchain, write SHA256SUMS, and refuse to release a native build
# that fails plugin-conformance.
#
#   examples/release/release.sh PACKAGE NAME VERSION [plugin-conformance flags...]
#
#   PACKAGE  the plugin's main package, e.g. ./examples/plugins/packer-plugin-example
#   NAME     the plugin's name: binaries are packer-plugin-NAME (packer-plugin-NAME.exe on Windows)
#   VERSION  the version to stamp: pluginkit.Version (what pluginkit.Serve reports), and
#            main.version too, for a plugin that passes its own to pluginkit.NewServer
#   flags    passed to plugin-conformance, e.g. -config example=builder.json
#
# Output, in dist/ (or $DIST):
#   dist/NAME_VERSION_GOOS_GOARCH/packer-plugin-NAME[.exe]
#   dist/SHA256SUMS   (sha256sum format: "HEX  PATH", paths relative to dist/)
#
# The native binary is what `packer plugins install --path` takes; the
# conformance run is the release gate: any MUST failure stops the release.
set -euo pipefail

if [ $# -lt 3 ]; then
  sed -n '2,20p' "$0" >&2
  exit 2
fi
pkg=$1 name=$2 version=$3
shift 3
dist=${DIST:-dist}
platforms=${PLATFORMS:-"linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64"}

rm -rf "$dist"
mkdir -p "$dist"
for p in $platforms; do
  goos=${p%/*} goarch=${p#*/}
  exe=packer-plugin-$name
  [ "$goos" = windows ] && exe=$exe.exe
  out=$dist/${name}_${version}_${goos}_${goarch}/$exe
  echo "building $out"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath \
    -ldflags "-s -w -X github.com/packer-stdio/packer/pluginkit.Version=$version -X main.version=$version" -o "$out" "$pkg"
done
(cd "$dist" && find . -type f -name 'packer-plugin-*' | sed 's|^\./||' | sort | xargs sha256sum > SHA256SUMS)
echo "wrote $dist/SHA256SUMS"

native=$dist/${name}_${version}_$(go env GOOS)_$(go env GOARCH)/packer-plugin-$name
[ "$(go env GOOS)" = windows ] && native=$native.exe
conformance=$(mktemp -d)/plugin-conformance
go build -o "$conformance" ./cmd/plugin-conformance
echo "release gate: plugin-conformance $native"
"$conformance" "$@" "$native"
