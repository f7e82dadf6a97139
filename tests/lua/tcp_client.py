# A minimal NATS client over TCP (the text protocol), for the Lua tests.
#   python3 tcp_client.py respond HOST PORT SUBJECT   answer requests with "tcp:<data>";
#                                                     prints "ready" once subscribed
#   python3 tcp_client.py request HOST PORT SUBJECT DATA   send one request, print the reply
import socket
import sys

mode, host, port, subject = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
s = socket.create_connection((host, port))
s.settimeout(10)
f = s.makefile("rb")
f.readline()  # INFO
s.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\n')
if mode == "respond":
    s.sendall(b"SUB " + subject.encode() + b" 1\r\n")
else:
    s.sendall(b"SUB _INBOX.lua-test 1\r\n")
s.sendall(b"PING\r\n")
while not f.readline().startswith(b"PONG"):
    pass
if mode == "respond":
    print("ready", flush=True)
else:
    data = sys.argv[5].encode()
    s.sendall(b"PUB " + subject.encode() + b" _INBOX.lua-test " + str(len(data)).encode() +
              b"\r\n" + data + b"\r\n")
while True:
    line = f.readline()
    if not line:
        break
    if line.startswith(b"PING"):
        s.sendall(b"PONG\r\n")
    elif line.startswith(b"MSG") or line.startswith(b"HMSG"):
        parts = line.split()
        hmsg = parts[0] == b"HMSG"
        size = int(parts[-1])
        hdr = int(parts[-2]) if hmsg else 0
        reply = parts[3] if len(parts) == (6 if hmsg else 5) else None
        data = f.read(size + 2)[hdr:-2]
        if mode == "request":
            print(data.decode(), flush=True)
            break
        if reply:
            body = b"tcp:" + data
            s.sendall(b"PUB " + reply + b" " + str(len(body)).encode() + b"\r\n" + body + b"\r\n")
