#!/usr/bin/env python3
"""The functions of a Latchkey binary that ran, read from its file's pages in the page cache.

benches/text-order.sh evicts the binary from the page cache, turns read-ahead off and has
it start and serve its workloads: every page of its code in the cache afterwards was then
executed by it. This prints, in address order, the symbol of every function that begins on
such a page: the ordering file that the release link lays out first (build.rs).

    text-order.py BINARY > src/hot-text.order
    text-order.py --check BINARY     # how much of src/hot-text.order the binary has: names
                                     # change with dependencies, features and the compiler
"""
import ctypes
import ctypes.util
import os
import re
import subprocess
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")
PROT_READ, MAP_SHARED = 0x1, 0x01


def resident_pages(path):
    """The numbers of the pages of `path` that are in the page cache (mincore(2))."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    pages = (size + PAGE - 1) // PAGE
    fd = os.open(path, os.O_RDONLY)
    try:
        # Mapping a file reads none of it: only mincore looks at the cache.
        address = libc.mmap(None, size, PROT_READ, MAP_SHARED, fd, 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap failed")
        vector = ctypes.create_string_buffer(pages)
        status = libc.mincore(address, size, vector)
        libc.munmap(address, size)
        if status != 0:
            raise OSError(ctypes.get_errno(), "mincore failed")
    finally:
        os.close(fd)
    return {page for page in range(pages) if vector.raw[page] & 1}


def executable_segments(path):
    """(virtual address, file offset, size) of each executable LOAD segment."""
    out = subprocess.run(["readelf", "-lW", path], capture_output=True, text=True, check=True).stdout
    segments = []
    for line in out.splitlines():
        fields = line.split()
        if fields[:1] == ["LOAD"] and "E" in "".join(fields[6:-1]):
            offset, vaddr, filesz = (int(value, 16) for value in (fields[1], fields[2], fields[4]))
            segments.append((vaddr, offset, filesz))
    return segments


def functions(path):
    """(address, size, mangled name) of each function symbol with a size."""
    out = subprocess.run(["nm", "--defined-only", "-S", "-n", path], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        match = re.match(r"^([0-9a-f]+) ([0-9a-f]+) [tTW] (\S+)$", line)
        if match and int(match.group(2), 16) > 0:
            yield int(match.group(1), 16), int(match.group(2), 16), match.group(3)


def check(binary, order="src/hot-text.order"):
    listed = [line.strip() for line in open(order) if line.strip()]
    present = {name for _, _, name in functions(binary)}
    found = sum(name in present for name in listed)
    print(f"{binary}: {found} of the {len(listed)} functions in {order} ({100 * found // max(len(listed), 1)} %)")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        return check(sys.argv[2])
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    resident = resident_pages(binary)
    segments = executable_segments(binary)
    ran, seen, listed = [], set(), 0
    for address, size, name in functions(binary):
        for vaddr, offset, filesz in segments:
            if vaddr <= address < vaddr + filesz:
                # A function that ran was entered at its first byte: its first page is in
                # the cache. Its other pages may be there for a neighbour's sake alone.
                entry = (address - vaddr + offset) // PAGE
                if entry in resident and name not in seen:
                    seen.add(name)
                    ran.append(name)
                    listed += size
    code = sum(filesz for _, _, filesz in segments)
    code_pages = {page for _, offset, filesz in segments for page in range(offset // PAGE, (offset + filesz) // PAGE + 1)}
    print(
        f"{len(resident & code_pages)} of {len(code_pages)} code pages ran ({code / 2**20:.1f} MiB of code); "
        f"{len(ran)} functions ({listed / 2**20:.1f} MiB) begin on them",
        file=sys.stderr,
    )
    print("\n".join(ran))


if __name__ == "__main__":
    main()
