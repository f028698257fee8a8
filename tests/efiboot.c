/* The tiny Gen2 image's boot loader, at \EFI\BOOT\BOOTX64.EFI on its EFI System Partition: it starts the kernel
 * (an EFI application itself, Debian's kernels have the EFI stub) from the same partition with a fixed command line,
 * the way systemd-boot or GRUB would after reading their configuration. The kernel's stub loads the initrd= it names
 * from its own partition. tests/tinyimage.py builds this with the host's gcc and ld (PE32+ output, no EFI headers or
 * libraries: the few UEFI structures it touches are declared below, from the UEFI 2.x specification), passing
 * KERNEL and CMDLINE as wide-string macros.
 */
typedef unsigned long long UINTN;
typedef unsigned short CHAR16;
typedef void *EFI_HANDLE;
typedef UINTN EFI_STATUS;
#define EFIAPI __attribute__((ms_abi))

typedef struct {
  unsigned Data1;
  unsigned short Data2, Data3;
  unsigned char Data4[8];
} EFI_GUID;

typedef struct {
  char Hdr[24];
  void *Before[16]; /* RaiseTPL ... UninstallProtocolInterface */
  EFI_STATUS(EFIAPI *HandleProtocol)(EFI_HANDLE, EFI_GUID *, void **);
  void *Between[5]; /* Reserved ... InstallConfigurationTable */
  EFI_STATUS(EFIAPI *LoadImage)(unsigned char, EFI_HANDLE, void *, void *, UINTN, EFI_HANDLE *);
  EFI_STATUS(EFIAPI *StartImage)(EFI_HANDLE, UINTN *, CHAR16 **);
} EFI_BOOT_SERVICES;

typedef struct {
  char Hdr[24];
  void *Before[9]; /* FirmwareVendor ... RuntimeServices */
  EFI_BOOT_SERVICES *BootServices;
} EFI_SYSTEM_TABLE;

typedef struct {
  unsigned Revision;
  EFI_HANDLE ParentHandle;
  void *SystemTable;
  EFI_HANDLE DeviceHandle;
  void *FilePath;
  void *Reserved;
  unsigned LoadOptionsSize;
  void *LoadOptions;
} EFI_LOADED_IMAGE;

static EFI_GUID loaded_image_guid = {0x5b1b31a1, 0x9562, 0x11d2, {0x8e, 0x3f, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b}};
static EFI_GUID device_path_guid = {0x09576e91, 0x6d3f, 0x11d2, {0x8e, 0x39, 0x00, 0xa0, 0xc9, 0x69, 0x72, 0x3b}};
static CHAR16 kernel[] = KERNEL;
static CHAR16 cmdline[] = CMDLINE;
static unsigned char path[4096];

/* The partition's device path with a file path node for the kernel appended: nodes are (type, subtype, 16-bit
 * length), the path ends with the node 7f ff 04 00. */
static void *kernel_path(unsigned char *partition) {
  UINTN n = 0, i;
  while (!(partition[n] == 0x7f && partition[n + 1] == 0xff)) n += partition[n + 2] | partition[n + 3] << 8;
  for (i = 0; i < n; i++) path[i] = partition[i];
  UINTN size = 4 + sizeof kernel;
  path[n] = 4; /* media */
  path[n + 1] = 4; /* file path */
  path[n + 2] = size & 0xff;
  path[n + 3] = size >> 8;
  for (i = 0; i < sizeof kernel; i++) path[n + 4 + i] = ((unsigned char *)kernel)[i];
  n += size;
  path[n] = 0x7f;
  path[n + 1] = 0xff;
  path[n + 2] = 4;
  path[n + 3] = 0;
  return path;
}

EFI_STATUS EFIAPI efi_main(EFI_HANDLE self, EFI_SYSTEM_TABLE *system) {
  EFI_BOOT_SERVICES *bs = system->BootServices;
  EFI_LOADED_IMAGE *loader, *started;
  void *partition;
  EFI_HANDLE image;
  EFI_STATUS status;
  if ((status = bs->HandleProtocol(self, &loaded_image_guid, (void **)&loader)) != 0) return status;
  if ((status = bs->HandleProtocol(loader->DeviceHandle, &device_path_guid, &partition)) != 0) return status;
  if ((status = bs->LoadImage(0, self, kernel_path(partition), 0, 0, &image)) != 0) return status;
  if ((status = bs->HandleProtocol(image, &loaded_image_guid, (void **)&started)) != 0) return status;
  started->LoadOptions = cmdline;
  started->LoadOptionsSize = sizeof cmdline;
  return bs->StartImage(image, 0, 0);
}
