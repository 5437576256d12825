#!/usr/bin/env python3
"""UDP server printing the real client of every datagram behind a FullNAT
load balancer, using the uoa module (getsockopt(IPPROTO_IP, 2048) with the
packed 58-byte struct uoa_param_map of module/uoa/uoa.h).

Python's socket.getsockopt() cannot pass input bytes to the kernel, and the
lookup needs its key in the buffer, so libc's getsockopt() is called through
ctypes on the socket's descriptor.

Run: python3 uoa_server.py [port]     (default 8080, IPv4 and IPv6)
"""
import ctypes
import ctypes.util
import errno
import socket
import struct
import sys

UOA_SO_GET_LOOKUP = 2048
# af (host order), saddr, daddr, sport, dport (network order), real_af,
# real_saddr, real_sport: 2 + 16 + 16 + 2 + 2 + 2 + 16 + 2 = 58 bytes.
PARAM_MAP = struct.Struct("=H16s16s2s2sH16s2s")
assert PARAM_MAP.size == 58

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
libc.getsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int,
                            ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint32)]


def real_client(sock, peer_addr, peer_port, local_addr, local_port):
    """(address, port) of the real client, or raises OSError (ENOENT: none)."""
    key = PARAM_MAP.pack(socket.AF_INET6,
                         socket.inet_pton(socket.AF_INET6, peer_addr),
                         local_addr, struct.pack("!H", peer_port),
                         struct.pack("!H", local_port), 0, b"", b"")
    buf = ctypes.create_string_buffer(key, PARAM_MAP.size)
    length = ctypes.c_uint32(PARAM_MAP.size)
    if libc.getsockopt(sock.fileno(), socket.IPPROTO_IP, UOA_SO_GET_LOOKUP,
                       buf, ctypes.byref(length)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, errno.errorcode.get(err, str(err)))
    fields = PARAM_MAP.unpack(buf.raw[:PARAM_MAP.size])
    real_af, real_addr, real_port = fields[5], fields[6], fields[7]
    if real_af == socket.AF_INET:
        text = socket.inet_ntop(socket.AF_INET, real_addr[:4])
    else:
        text = socket.inet_ntop(socket.AF_INET6, real_addr)
    return text, struct.unpack("!H", real_port)[0]


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    if not 0 < port < 65536:
        sys.exit("usage: uoa_server.py [port 1-65535]")
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    # One socket for both families; IPv4 peers appear as ::ffff:a.b.c.d.
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
    sock.bind(("::", port))
    print(f"listening on UDP port {port}", flush=True)
    while True:
        data, ancdata, _flags, peer = sock.recvmsg(2048, 256)
        local = None
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                local = value[:16]  # struct in6_pktinfo: address first
        where = f"[{peer[0]}]:{peer[1]}"
        if local is None:
            print(f"{len(data)} bytes from {where} (no destination address)")
            continue
        try:
            addr, rport = real_client(sock, peer[0], peer[1], local, port)
            print(f"{len(data)} bytes from {where} real client [{addr}]:{rport}",
                  flush=True)
        except OSError as e:
            why = ("uoa module not loaded" if e.errno == errno.ENOPROTOOPT
                   else e.strerror)
            print(f"{len(data)} bytes from {where} (no real client: {why})",
                  flush=True)


if __name__ == "__main__":
    main()
