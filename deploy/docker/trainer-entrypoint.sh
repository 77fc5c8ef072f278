#!/bin/sh
# Entry point of the trainer image. Started as root (docker-compose.yaml does, with only the
# SETUID and SETGID capabilities), it runs the command with the user and group ids of the owner
# of the mounted artifacts folder, so published models belong to whoever owns ./artifacts on the
# host without any HOST_UID setting. Started as any other user (the image's default, or a
# Kubernetes runAsUser), it runs the command unchanged.
set -eu
artifacts="${ARTIFACTS_MOUNT:-/app/artifacts}"
if [ "$(id -u)" = "0" ] && [ -d "$artifacts" ]; then
  uid="$(stat -c %u "$artifacts")"
  gid="$(stat -c %g "$artifacts")"
  if [ "$uid" != "0" ]; then
    # Changing to a non-zero uid clears every capability; no supplementary groups are kept.
    exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$@"
  fi
  echo "trainer: ${artifacts} is owned by root: training as root (no capabilities but SETUID/SETGID)" >&2
fi
exec "$@"
