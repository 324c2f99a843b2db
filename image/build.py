#!/usr/bin/env python3
"""Build the appliance's disk image from Debian packages and this repository's wheel.

    python3 image/build.py [--arch amd64] [--out build/image] [--cache DIR]

Needs root (mmdebstrap's root mode: the chroot mounts /proc, /sys and /dev) and Debian's
`mmdebstrap`, `mtools`, `dosfstools`, `fdisk` and `e2fsprogs`: `./setup.sh image [ARGS]` installs
them and runs this (packages cached in `build/apt-cache`).
Nothing comes from anywhere but the Debian archive and PyPI. Three steps:

1. **The wheel** of this checkout (`pip wheel --no-deps`).
2. **The root file system** (`mmdebstrap`, Debian 13 "trixie", Python 3.13): systemd, the
   kernel and an initramfs built once with a short module list, Python, the voice prompt packs,
   espeak-ng and sox; a virtualenv `/opt/pbx/.venv` with the wheel and its dependencies, every
   one pinned by `image/constraints.txt` (the one package without a wheel, pyalsaaudio, is
   compiled in the chroot and its compiler removed again: nothing is compiled on the box); the
   user `pbx`, the units of `systemd/` enabled, the files of `image/rootfs/`.
3. **The disk**, assembled without loop devices: a GPT partition table written on a file
   (`sfdisk`), an EFI system partition made with `mkfs.vfat` and filled with mtools
   (systemd-boot, the kernel, the initramfs, a boot entry per root slot), the root slot A
   (`mkfs.ext4 -d`, mounted read-only at boot) and the data partition (`mkfs.ext4 -d`: `/var`,
   with the box's database, recordings, prompts and logs).

Writes `OUT/pbx-ARCH.img` and `OUT/pbx-ARCH.json` (what was built: partitions, sizes, times).
`--cache` keeps the downloaded packages between builds. The partition layout is this module's
`PARTITIONS`; `docs/APPLIANCE.md` describes the result.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MIRROR = "http://deb.debian.org/debian"
SUITE = "trixie"
MIB = 1 << 20

PACKAGES = [
    # the system
    "systemd", "systemd-sysv", "systemd-timesyncd", "systemd-resolved", "systemd-repart", "udev",
    "dbus-broker",
    "initramfs-tools", "kmod", "passwd", "iproute2", "procps", "ca-certificates", "openssl",
    "sqlite3", "e2fsprogs",
    # the services' Python and the libraries they load
    "python3", "python3-venv", "libasound2t64", "libopus0", "libogg0",
    # what callers hear: Debian's recorded prompts, hold music, espeak-ng and sox for typed ones
    "asterisk-core-sounds-en-wav", "asterisk-core-sounds-ru-wav", "asterisk-moh-opsound-wav",
    "espeak-ng", "sox", "libsox-fmt-mp3",
]  # fmt: skip
BUILD_ONLY = ["gcc", "libc6-dev", "libasound2-dev", "python3-dev"]
"""Installed to compile pyalsaaudio (no wheel on PyPI), then purged (binutils with them)."""
KERNEL_DROPPED = ["drivers/gpu", "drivers/media", "drivers/infiniband", "drivers/net/wireless",
                  "drivers/iio", "drivers/isdn", "drivers/staging", "net/wireless", "net/mac80211",
                  "net/bluetooth", "drivers/bluetooth", "sound/soc", "sound/pci/hda"]  # fmt: skip
"""Kernel modules a PBX never loads (graphics, cameras, Wi-Fi, Bluetooth, laptop sound):
about 40 MB. The console stays on the firmware's frame buffer; USB sound adapters stay."""
BABEL_KEPT = ("root", "en", "ru")
"""Babel's locale data kept (the page's languages and their regional variants): 1 of 36 MB."""
ARCH_PACKAGES = {
    "amd64": ["linux-image-amd64", "systemd-boot-efi"],
}
INITRAMFS_MODULES = {
    # the disks an x86 board or a VM boots from, and the root file system
    "amd64": ["ext4", "vfat", "nls_cp437", "nls_ascii", "sd_mod", "ahci", "nvme", "virtio_pci",
              "virtio_blk", "virtio_scsi", "mmc_block", "sdhci_pci", "usb_storage", "uas",
              "xhci_pci", "ehci_pci"],
}  # fmt: skip
EFI_BOOT = {"amd64": ("usr/lib/systemd/boot/efi/systemd-bootx64.efi", "BOOTX64.EFI")}
CMDLINE = "ro console=tty0 console=ttyS0,115200 quiet"


@dataclass(frozen=True)
class Partition:
    label: str
    type: str
    """The GPT partition type: an sfdisk shortcut or a type UUID."""
    size: int
    """Bytes."""


ESP_SIZE = 80 * MIB
"""The kernel and initramfs of both root slots, systemd-boot and its entries."""
DATA_SIZE = 64 * MIB
"""The data partition as built (the image stays small); the first boot grows it to the disk
(systemd-repart, `image/rootfs/usr/lib/repart.d/`; the file system by `x-systemd.growfs`)."""
ROOT_MARGIN = 1.10
"""The root file system's size: what it holds, plus 10 % and 32 MiB."""


def run(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(str(a) for a in argv), flush=True)
    return subprocess.run([str(a) for a in argv], check=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def build_wheel(into: Path) -> Path:
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", into, REPO)
    (wheel,) = into.glob("pbx_appliance-*.whl")
    return wheel


def build_root(arch: str, root: Path, wheel: Path, cache: Path | None) -> None:
    """mmdebstrap into `root` (a directory), with the venv, the user and the units."""
    modules = "\n".join(INITRAMFS_MODULES[arch]) + "\n"
    setup = [
        # Before any package is installed, so that the kernel's initramfs is built once, small.
        'mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"',
        'echo MODULES=list > "$1/etc/initramfs-tools/conf.d/pbx"',
        f"printf '%s' '{modules}' > \"$1/usr/share/initramfs-tools/modules.d/pbx\"",
    ]
    # pip in the chroot trusts what pip on the build machine trusts (a proxy's CA, say); the
    # bundle is removed with the wheel and never reaches the image.
    bundle = Path(os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt")
    customize = [
        f"copy-in {wheel} {HERE / 'constraints.txt'} /tmp",
        f"upload {bundle} /tmp/build-ca.pem",
        f"copy-in {REPO / 'systemd'} /tmp",
        f"copy-in {HERE / 'rootfs'} /tmp",
        f'chroot "$1" sh -exc "{_in_chroot(wheel.name)}"',
        'rm -f "$1/tmp/build-ca.pem" "$1/tmp/constraints.txt"',
    ]
    argv: list[str | Path] = [
        "mmdebstrap", "--mode=root", "--variant=apt", f"--arch={arch}", "--format=directory",
        f"--include={','.join(PACKAGES + BUILD_ONLY + ARCH_PACKAGES[arch])}",
        "--aptopt=APT::Install-Recommends \"false\"",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/info/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
    ]  # fmt: skip
    for hook in setup:
        argv.append(f"--setup-hook={hook}")
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        argv += [
            '--setup-hook=mkdir -p "$1/var/cache/apt/archives"',
            f"--setup-hook=sync-in {cache} /var/cache/apt/archives",
            f"--customize-hook=sync-out /var/cache/apt/archives {cache}",
            "--skip=download/empty", "--skip=essential/unlink",
        ]  # fmt: skip
    for hook in customize:
        argv.append(f"--customize-hook={hook}")
    argv.append('--customize-hook=rm -rf "$1/tmp/systemd" "$1/tmp/rootfs" "$1"/tmp/*.whl')
    argv += [SUITE, root, MIRROR]
    # The build machine's pip settings (its own indexes, constraints) stay out of the chroot.
    run(*argv, env={k: v for k, v in os.environ.items() if not k.startswith("PIP_")})


def _in_chroot(wheel: str) -> str:
    """The shell commands run inside the new root (double quotes escaped for `sh -c "..."`)."""
    steps = [
        # The services' user: the serial port and GPIO (dialout) and the sound cards (audio).
        "useradd --system --home-dir /var/lib/pbx --no-create-home --shell /usr/sbin/nologin"
        " --groups dialout,audio pbx",
        "python3 -m venv /opt/pbx/.venv",
        f"SSL_CERT_FILE=/tmp/build-ca.pem /opt/pbx/.venv/bin/pip install --no-cache-dir"
        f" --disable-pip-version-check -q"
        f" --cert /tmp/build-ca.pem --constraint /tmp/constraints.txt /tmp/{wheel}",
        "/opt/pbx/.venv/bin/pbx --help >/dev/null",
        "cp /tmp/systemd/*.service /tmp/systemd/*.target /etc/systemd/system/",
        "cp -a /tmp/rootfs/. /",
        "systemctl enable pbx.target pbx-core.service pbx-lines.service pbx-web.service"
        " pbx-factory-reset.path pbx-data-reset.service pbx-hostname.service"
        " systemd-networkd.service systemd-resolved.service systemd-timesyncd.service",
        "systemctl set-default multi-user.target",
        # The compiler was for pyalsaaudio only; pip was for the install only.
        f"apt-get purge -y -q --autoremove {' '.join(BUILD_ONLY)} binutils",
        "/opt/pbx/.venv/bin/python -m pip uninstall -y -q pip",
        "apt-get clean",
        "rm -rf /var/lib/apt/lists/* /root/.cache",
    ]
    return " && ".join(steps).replace('"', '\\"')


def finish_root(root: Path) -> None:
    """What must hold on a read-only root after mmdebstrap has cleaned up, and what the box
    never uses taken out."""
    for modules in (root / "usr" / "lib" / "modules").iterdir():
        for part in KERNEL_DROPPED:
            shutil.rmtree(modules / "kernel" / part, ignore_errors=True)
        run("chroot", root, "depmod", modules.name)
    for data in (root / "opt" / "pbx" / ".venv" / "lib").glob(
        "python3*/site-packages/babel/locale-data"
    ):
        for dat in data.glob("*.dat"):
            if dat.stem.split("_")[0] not in BABEL_KEPT:
                dat.unlink()
    resolv = root / "etc" / "resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.symlink_to("../run/systemd/resolve/stub-resolv.conf")
    (root / "etc" / "hostname").write_text("pbx\n")  # until pbx-hostname.service sets pbx-XXXX
    (root / "etc" / "machine-id").write_text("")  # made at boot (a new box, a new id)


def partition_layout(root_size: int) -> list[Partition]:
    return [
        Partition("ESP", "uefi", ESP_SIZE),
        Partition("pbx-root-a", "4f68bce3-e8cd-4db1-96e7-fbcaf984b709", root_size),  # root x86-64
        Partition("pbx-data", "4d21b016-b534-45c2-a9fb-5c16e091fd2d", DATA_SIZE),  # /var
    ]


def tree_size(path: Path) -> tuple[int, int]:
    """Bytes (whole 4 KiB blocks) and inodes a directory tree takes."""
    size = files = 0
    for dirpath, dirnames, filenames in os.walk(path):
        files += 1 + len(filenames) + len(dirnames)
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            size += -(-st.st_size // 4096) * 4096
    return size, files


def mkfs_ext4(image: Path, label: str, tree: Path, size: int, inodes: int) -> None:
    run("mkfs.ext4", "-q", "-F", "-L", label, "-d", tree, "-N", str(inodes), image,
        f"{size // 1024}k")  # fmt: skip


def make_esp(image: Path, root: Path, arch: str) -> None:
    run("mkfs.vfat", "-F", "32", "-n", "ESP", "-C", image, str(ESP_SIZE // 1024))
    efi, name = EFI_BOOT[arch]
    kernel = sorted((root / "boot").glob("vmlinuz-*"))[-1]
    initrd = root / "boot" / kernel.name.replace("vmlinuz", "initrd.img")
    with tempfile.TemporaryDirectory() as tmp:
        entries = Path(tmp)
        (entries / "loader.conf").write_text("default pbx-a.conf\ntimeout 0\neditor no\n")
        (entries / "pbx-a.conf").write_text(
            "title PBX (slot A)\nlinux /a/vmlinuz\ninitrd /a/initrd.img\n"
            f"options root=PARTLABEL=pbx-root-a {CMDLINE}\n"
        )
        mtools = {"MTOOLS_SKIP_CHECK": "1", **os.environ}
        run("mmd", "-i", image, "::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries", "::/a",
            env=mtools)  # fmt: skip
        run("mcopy", "-i", image, root / efi, f"::/EFI/BOOT/{name}", env=mtools)
        run("mcopy", "-i", image, entries / "loader.conf", "::/loader/loader.conf", env=mtools)
        run("mcopy", "-i", image, entries / "pbx-a.conf", "::/loader/entries/pbx-a.conf",
            env=mtools)  # fmt: skip
        run("mcopy", "-i", image, kernel, "::/a/vmlinuz", env=mtools)
        run("mcopy", "-i", image, initrd, "::/a/initrd.img", env=mtools)


def assemble(disk: Path, parts: list[tuple[Partition, Path]]) -> list[dict[str, object]]:
    """A GPT disk on a file: each partition's image copied in at its offset; the layout."""
    offsets = []
    offset = MIB  # the first partition at 1 MiB; the table and its backup around them
    for part, _image in parts:
        offsets.append(offset)
        offset += part.size
    with open(disk, "wb") as out:
        out.truncate(offset + MIB)
    script = ["label: gpt"] + [
        f'start={at // 512}, size={part.size // 512}, type={part.type}, name="{part.label}"'
        for (part, _image), at in zip(parts, offsets, strict=True)
    ]
    run("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk,
        input="\n".join(script) + "\n")  # fmt: skip
    with open(disk, "r+b") as out:
        for (part, image), at in zip(parts, offsets, strict=True):
            out.seek(at)
            with open(image, "rb") as src:
                shutil.copyfileobj(src, out, 16 * MIB)
            assert out.tell() - at <= part.size, f"{image} is larger than {part.label}"
    return [{"label": part.label, "offset": at, "size": part.size}
            for (part, _image), at in zip(parts, offsets, strict=True)]  # fmt: skip


STAMPED = ("appliance", "systemd", "image", "hw/boards", "pyproject.toml")
"""What goes into the image: a build is current while none of it changed."""


def stamp() -> str:
    """A digest of every file under `STAMPED` (their paths and contents)."""
    import hashlib

    digest = hashlib.sha256()
    for top in STAMPED:
        base = REPO / top
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in paths:
            if "__pycache__" in path.parts:
                continue
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=sorted(ARCH_PACKAGES), default="amd64")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "image")
    parser.add_argument("--cache", type=Path, help="keep downloaded packages here between builds")
    parser.add_argument(
        "--stamp",
        action="store_true",
        help="print the digest of what goes into the image, build nothing",
    )
    args = parser.parse_args(argv)
    if args.stamp:
        print(stamp())
        return 0
    if os.geteuid() != 0:
        parser.error("run as root (mmdebstrap's root mode)")
    args.out.mkdir(parents=True, exist_ok=True)
    started, stamped = time.monotonic(), stamp()
    with tempfile.TemporaryDirectory(prefix="pbx-image-", dir=args.out) as tmp:
        work = Path(tmp)
        wheel = build_wheel(work / "wheel")
        root = work / "root"
        build_root(args.arch, root, wheel, args.cache)
        finish_root(root)
        rooted = time.monotonic()
        # /var is the data partition: its contents go there, an empty mount point stays.
        data = work / "data"
        (root / "var").rename(data)
        (root / "var").mkdir()
        # A factory reset makes the data partition again from this copy of a new box's /var.
        (root / "usr" / "share" / "pbx").mkdir(parents=True, exist_ok=True)
        run("cp", "-a", data, root / "usr" / "share" / "pbx" / "var")
        # Units that start before /var is mounted (systemd-resolved) find /var/tmp for their
        # PrivateTmp= on the root's mount point; the data partition's own hides it later.
        (root / "var" / "tmp").mkdir(mode=0o1777)
        (root / "var" / "tmp").chmod(0o1777)
        used, inodes = tree_size(root)
        root_size = (int(used * ROOT_MARGIN) + 32 * MIB + MIB - 1) // MIB * MIB
        images = {
            "ESP": work / "esp.img", "pbx-root-a": work / "root.img", "pbx-data": work / "data.img",
        }  # fmt: skip
        make_esp(images["ESP"], root, args.arch)
        mkfs_ext4(images["pbx-root-a"], "pbx-root-a", root, root_size, int(inodes * 1.3) + 4096)
        data_used, _ = tree_size(data)
        assert data_used < DATA_SIZE // 2, f"/var holds {data_used // MIB} MiB"
        mkfs_ext4(images["pbx-data"], "pbx-data", data, DATA_SIZE, 65536)
        disk = args.out / f"pbx-{args.arch}.img"
        parts = [(part, images[part.label]) for part in partition_layout(root_size)]
        layout = assemble(disk, parts)
        kernel = sorted((root / "boot").glob("vmlinuz-*"))[-1]
        for name in (kernel.name, kernel.name.replace("vmlinuz", "initrd.img")):
            shutil.copy2(root / "boot" / name, args.out / name.split("-")[0])
    report = {
        "arch": args.arch, "suite": SUITE, "stamp": stamped, "image": disk.name,
        "bytes": disk.stat().st_size,
        "root_used": used, "partitions": layout, "kernel": kernel.name,
        "seconds": {"root": round(rooted - started), "total": round(time.monotonic() - started)},
    }  # fmt: skip
    (args.out / f"pbx-{args.arch}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
