#!/usr/bin/env bash
# Builds the retainwise container image without pulling any base image: FROM scratch + the
# binary built here + the shared libraries `ldd` lists + CA certificates + a non-root user,
# with Debian's podman (installed if absent, with runc). The same layout as the Dockerfile's
# distroless image: ENTRYPOINT retainwise, default command `serve`, user 65532, no shell.
#
#   scripts/image.sh [--profile PROFILE | --binary PATH] [--tag NAME:TAG]
#
# PROFILE is a cargo profile (default release; also RETAINWISE_IMAGE_PROFILE); the commit and
# build time are compiled in for GET /__version. --binary packs an already built binary instead
# (CI packs the one `cargo test` built, with RETAINWISE_GIT_COMMIT exported by .ci/run).
# Prints the image reference as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${RETAINWISE_IMAGE_PROFILE:-release}"
tag=""
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    *) echo "usage: scripts/image.sh [--profile PROFILE | --binary PATH] [--tag NAME:TAG]" >&2; exit 2 ;;
  esac
done

if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
  echo "== installing podman and runc (Debian packages)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null) >&2
fi

commit="$(git rev-parse HEAD 2>/dev/null || true)"
if [ -n "$commit" ] && [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi
export RETAINWISE_GIT_COMMIT="$commit"
export RETAINWISE_BUILD_TIME="${RETAINWISE_BUILD_TIME:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}"
tag="${tag:-localhost/retainwise:${commit:0:12}}"
tag="${tag%:}"

if [ -n "$binary" ]; then
  bin="$binary"
  [ -x "$bin" ] || { echo "no executable at $bin" >&2; exit 1; }
else
  echo "== cargo build --profile $profile (commit ${commit:-unknown})" >&2
  started=$(date +%s)
  cargo build --workspace --locked --profile "$profile" --bins >&2
  dir="$profile"
  [ "$profile" = dev ] && dir=debug
  bin="target/$dir/retainwise"
  echo "== built $bin in $(( $(date +%s) - started )) s" >&2
fi

ctx="$(mktemp -d /tmp/retainwise-image.XXXXXX)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$ctx/home/nonroot"
chmod 1777 "$root/tmp"
# Debug sections off: the image is for running (the host's build keeps them for debugging).
objcopy --strip-debug "$bin" "$root/usr/local/bin/retainwise"
for lib in $(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
  cp --parents -L "$lib" "$root/"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"

cat >"$ctx/Containerfile" <<CONTAINERFILE
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 home/nonroot /home/nonroot
LABEL org.opencontainers.image.title="retainwise" \\
      org.opencontainers.image.revision="$commit" \\
      org.opencontainers.image.created="$RETAINWISE_BUILD_TIME"
ENV RETAINWISE_BIND=0.0.0.0:8080 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /home/nonroot
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/retainwise"]
CMD ["serve"]
CONTAINERFILE

podman build --quiet --runtime runc -f "$ctx/Containerfile" -t "$tag" "$ctx" >&2
size=$(podman image inspect "$tag" --format '{{.Size}}')
echo "== image $tag: $(( size / 1024 / 1024 )) MiB ($size bytes; binary $(( $(stat -c %s "$root/usr/local/bin/retainwise") / 1024 / 1024 )) MiB)" >&2
echo "$tag"
