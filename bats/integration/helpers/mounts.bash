# tmpfs mounts standing in for the backup disk and the small external drive.

# pgb_mount_tmpfs DIR SIZE: mounts a fresh tmpfs (SIZE like 64m or bytes) at DIR.
pgb_mount_tmpfs() {
  local dir="$1" size="$2"
  mkdir -p "${dir}"
  mount -t tmpfs -o "size=${size},mode=0755,nosuid,nodev" pgb-itest "${dir}"
  pgb_started_add mount "${dir}"
}

# pgb_resize_tmpfs DIR SIZE: changes the size of a mounted tmpfs, contents kept.
pgb_resize_tmpfs() {
  mount -o "remount,size=$2" "$1"
}

pgb_umount() {
  local dir="$1"
  if mountpoint -q "${dir}"; then
    umount "${dir}"
  fi
  pgb_started_remove mount "${dir}"
}

pgb_is_mounted() {
  mountpoint -q "$1"
}

# pgb_detach_keep DIR HOLD: unmounts DIR like a pulled disk while a bind mount at HOLD keeps
# the tmpfs (and its contents) alive; pgb_reattach DIR HOLD plugs it back in.
pgb_detach_keep() {
  local dir="$1" hold="$2"
  mkdir -p "${hold}"
  mount --bind "${dir}" "${hold}"
  pgb_started_add mount "${hold}"
  umount "${dir}"
  pgb_started_remove mount "${dir}"
}

pgb_reattach() {
  local dir="$1" hold="$2"
  mount --bind "${hold}" "${dir}"
  pgb_started_add mount "${dir}"
  pgb_umount "${hold}"
}

# Bytes used and available on a mounted filesystem.
pgb_fs_used() { df -B1 --output=used "$1" | tail -n 1 | tr -d ' '; }
pgb_fs_avail() { df -B1 --output=avail "$1" | tail -n 1 | tr -d ' '; }
