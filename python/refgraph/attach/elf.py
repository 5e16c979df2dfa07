"""Just enough ELF to tell whether a file is a CPython interpreter and which one: the names in
its dynamic symbol table, and the bytes at a symbol's address (``Py_Version``).

Only 64- and 32-bit little- and big-endian files are read; anything else (or a truncated or
corrupt file) raises :class:`ElfError`. Nothing here trusts the file: every offset is checked
against the file's size.
"""

from __future__ import annotations

import struct


class ElfError(ValueError):
    """Not an ELF file, or one this reader cannot use."""


_SHT_DYNSYM = 11
_PT_LOAD = 1
_MAX_SYMBOLS = 2_000_000


class Elf:
    """The dynamic symbols of one ELF file (what another module can link to, which is what
    survives stripping): ``symbols`` maps a name to ``(value, size)``."""

    def __init__(self, data):
        self.data = data
        if len(data) < 64 or data[:4] != b"\x7fELF":
            raise ElfError("not an ELF file")
        cls, enc = data[4], data[5]
        if cls not in (1, 2) or enc not in (1, 2):
            raise ElfError("unknown ELF class or byte order")
        self.bits = 64 if cls == 2 else 32
        self.end = "<" if enc == 1 else ">"
        if self.bits == 64:
            (phoff, shoff) = self._unpack("QQ", 0x20)
            (phentsize, phnum, shentsize, shnum) = self._unpack("HHHH", 0x36)
        else:
            (phoff, shoff) = self._unpack("II", 0x1C)
            (phentsize, phnum, shentsize, shnum) = self._unpack("HHHH", 0x2A)
        self.machine = self._unpack("H", 0x12)[0]
        self.segments = []
        for i in range(phnum):
            off = phoff + i * phentsize
            if self.bits == 64:
                p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = self._unpack("IIQQQQ", off)
            else:
                p_type, p_offset, p_vaddr, _paddr, p_filesz = self._unpack("IIIII", off)
            if p_type == _PT_LOAD:
                self.segments.append((p_vaddr, p_offset, p_filesz))
        sections = []
        for i in range(shnum):
            off = shoff + i * shentsize
            if self.bits == 64:
                _name, sh_type, _f, _a, sh_offset, sh_size, sh_link, _i, _al, sh_entsize = (
                    self._unpack("IIQQQQIIQQ", off)
                )
            else:
                _name, sh_type, _f, _a, sh_offset, sh_size, sh_link, _i, _al, sh_entsize = (
                    self._unpack("IIIIIIIIII", off)
                )
            sections.append((sh_type, sh_offset, sh_size, sh_link, sh_entsize))
        self.symbols = {}
        for sh_type, sh_offset, sh_size, sh_link, sh_entsize in sections:
            if sh_type == _SHT_DYNSYM and sh_link < len(sections):
                self._read_symbols(sh_offset, sh_size, sh_entsize, sections[sh_link])

    def _unpack(self, fmt, off):
        fmt = self.end + fmt
        size = struct.calcsize(fmt)
        if off < 0 or off + size > len(self.data):
            raise ElfError("truncated ELF file")
        return struct.unpack_from(fmt, self.data, off)

    def _read_symbols(self, offset, size, entsize, strtab):
        want = 24 if self.bits == 64 else 16
        if entsize != want or size // entsize > _MAX_SYMBOLS:
            return
        _t, str_off, str_size, _l, _e = strtab
        if str_off + str_size > len(self.data):
            raise ElfError("truncated ELF string table")
        for i in range(size // entsize):
            off = offset + i * entsize
            if self.bits == 64:
                st_name, _info, _other, st_shndx, st_value, st_size = self._unpack("IBBHQQ", off)
            else:
                st_name, st_value, st_size, _info, _other, st_shndx = self._unpack("IIIBBH", off)
            if st_shndx == 0 or st_name == 0 or st_name >= str_size:
                continue  # undefined (imported) symbols do not count
            start = str_off + st_name
            stop = self.data.find(b"\0", start, str_off + str_size)
            if stop < 0:
                continue
            name = self.data[start:stop].decode("latin-1")
            self.symbols.setdefault(name, (st_value, st_size))

    def read(self, name, size):
        """The file's bytes at symbol ``name`` (``size`` of them), or None."""
        sym = self.symbols.get(name)
        if sym is None:
            return None
        addr = sym[0]
        for vaddr, offset, filesz in self.segments:
            if vaddr <= addr and addr + size <= vaddr + filesz:
                start = offset + addr - vaddr
                if start + size <= len(self.data):
                    return self.data[start : start + size]
        return None

    def unpack(self, fmt, name):
        """``struct.unpack`` of the bytes at symbol ``name`` in the file's byte order, or None."""
        fmt = self.end + fmt
        raw = self.read(name, struct.calcsize(fmt))
        return None if raw is None else struct.unpack(fmt, raw)


_MACHINES = {3: "x86 (32-bit)", 40: "ARM (32-bit)", 62: "x86_64", 183: "aarch64", 243: "RISC-V"}


def header(path):
    """(bits, byte order, machine name) of an ELF file, from its first bytes."""
    with open(path, "rb") as f:
        head = f.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[4] not in (1, 2) or head[5] not in (1, 2):
        raise ElfError(f"{path}: not an ELF file")
    end = "<" if head[5] == 1 else ">"
    machine = struct.unpack_from(end + "H", head, 0x12)[0]
    bits = 64 if head[4] == 2 else 32
    return bits, end, _MACHINES.get(machine, f"machine {machine}")


def load(path, limit=1 << 30):
    """Read and parse the ELF file at ``path`` (at most ``limit`` bytes)."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ElfError(f"{path}: larger than {limit} bytes")
    return Elf(data)
