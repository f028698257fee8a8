#!/bin/sh
# vmgallery's build agent, placed in the guest by the vm engine for one build and removed after it: it runs the
# build's steps from the second disk (a tar archive, then File steps' bytes), reports on the second serial port, and
# powers the guest off.
# Protocol, one line each: "NONCE hello", "NONCE begin N UPTIME", "NONCE line N TEXT", "NONCE rc N CODE UPTIME",
# "NONCE reboot N", "NONCE finished". After the last step it removes itself and its boot hook (@CLEANUP@), so the
# host never edits a file system the guest may have left with a journal to replay.
case "$1" in stop) exit 0 ;; esac
N=@NONCE@
out=/dev/ttyS1
state=/var/lib/vmg-agent
say() { printf '%s %s\n' "$N" "$*" >"$out"; }
# A step's duration is measured here, on the guest's clock: the host reads the lines later and in bursts. Sets $up
# (no command substitution: every fork costs milliseconds under TCG).
now() { read -r up _ </proc/uptime; }
halt_guest() {
  sync
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    systemctl "$1" --no-block
  else
    # No init to unmount for us: a read-only root has its journal checkpointed, so the disk is clean as it stands.
    mount -o remount,ro / 2>/dev/null
    "$1" -f
  fi
  exit 0
}
clean_up() {
  rm -f @CLEANUP@ "$state/done"
  rmdir "$state" 2>/dev/null
}
say hello
mkdir -p /run/vmg
# The steps disk starts with "vmg-steps BYTES": the archive's length, after these first 512 bytes. Only it is read
# (busybox's tar would read the whole disk, File steps' bytes included, to its end).
read -r magic size </dev/vdb
if [ "$magic" != vmg-steps ] ||
  ! dd if=/dev/vdb bs=512 skip=1 count=$((size / 512)) status=none | tar -xf - -C /run/vmg; then
  say "fatal the steps disk /dev/vdb cannot be read"
  clean_up
  halt_guest poweroff
fi
done_upto=0
[ -f "$state/done" ] && read -r done_upto <"$state/done"
# A File step comes as a script too (the host writes its mkdir and dd from this disk), so every step runs the same way.
while read -r n; do
  [ "$n" -le "$done_upto" ] && continue
  d=/run/vmg/$n
  now
  say begin "$n" "$up"
  if [ -f "$d/script" ]; then
    # The exit code leaves through fd 3 so it survives the pipeline in any POSIX sh (no pipefail needed).
    rc=$( { { /bin/sh "$d/script" </dev/null 2>&1 3>&-; echo $? >&3; } |
      while IFS= read -r l || [ -n "$l" ]; do printf '%s line %s %s\n' "$N" "$n" "$l"; done >"$out" 3>&-; } 3>&1 )
  else
    rc=0
  fi
  now
  say rc "$n" "$rc" "$up"
  [ "$rc" = 0 ] || break
  if [ -f "$d/reboot" ]; then
    mkdir -p "$state"
    echo "$n" >"$state/done"
    say reboot "$n"
    halt_guest reboot
  fi
done </run/vmg/order
clean_up
say finished
halt_guest poweroff
