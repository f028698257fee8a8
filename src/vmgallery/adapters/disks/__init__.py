"""Disk image formats: the fixed-VHD footer Azure serves, Azure's upload size rule, and conversions via qemu-img."""
