#!/usr/bin/env python3
"""PUT a file over plain HTTP/1.1 with sendfile(2), the way a client on another machine costs
the server's machine nothing: the kernel hands the file's page-cache pages to the socket, so
the load generator does not take the CPU the server is being measured with (curl -T reads the
file and writes every byte into the socket, ~1.6 s of CPU for 2 GiB on these machines).

usage: put-sendfile.py URL FILE OUTFILE [HEADER ...]
prints "HTTP_CODE SECONDS" like curl -w '%{http_code} %{time_total}'; the body goes to OUTFILE.
"""

import os
import socket
import sys
import time
from urllib.parse import urlsplit


def main() -> int:
    url, path, outfile, *headers = sys.argv[1:]
    parts = urlsplit(url)
    if parts.scheme != "http":
        sys.exit("put-sendfile.py: only http:// URLs")
    size = os.path.getsize(path)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = [
        f"PUT {target} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"Content-Length: {size}",
        "Connection: close",
        *headers,
        "",
        "",
    ]
    start = time.monotonic()
    with socket.create_connection((parts.hostname, parts.port or 80)) as sock, open(path, "rb") as body:
        response = bytearray()
        try:
            sock.sendall("\r\n".join(head).encode())
            sock.sendfile(body)
            while chunk := sock.recv(65536):
                response += chunk
        except (BrokenPipeError, ConnectionResetError):
            # A server that refuses the body (413, 401) answers and closes before it has all
            # of it: what it answered, if anything, is still the result.
            try:
                while chunk := sock.recv(65536):
                    response += chunk
            except OSError:
                pass
    seconds = time.monotonic() - start
    header_end = response.find(b"\r\n\r\n")
    if header_end < 0:
        sys.exit(f"put-sendfile.py: no complete response ({len(response)} bytes)")
    status = response[: response.find(b"\r\n")].split()
    with open(outfile, "wb") as out:
        out.write(response[header_end + 4 :])
    print(f"{int(status[1])} {seconds:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
