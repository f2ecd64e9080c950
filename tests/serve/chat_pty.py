"""chat_pty.py SALIGN - drive `salign chat` through a pseudo-terminal: two turns, a /mode switch,
Ctrl-C during a long answer (the answer stops, the program goes on), Ctrl-C at the prompt, /quit.
Prints what it saw as JSON; tests/run-chat.sh checks it."""
import json, os, pty, re, select, sys, time

salign = sys.argv[1]
args = [salign, "chat", "--upstream", "weights/stories260K.salm", "--aligner", "weights/demo-aligner.salm",
        "--temp", "0", "-t", "1", "-c", "4096", "--max-tokens", "3000"]
pid, fd = pty.fork()
if pid == 0:
    os.execv(salign, args)

buf = b""
def read_until(pattern, timeout=60):
    """Read until the regex matches the output since the last call; return that output."""
    global buf
    t0 = time.time()
    while time.time() - t0 < timeout:
        m = re.search(pattern, buf)
        if m:
            got, buf = buf[:m.end()], buf[m.end():]
            return got.decode("utf-8", "replace")
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            buf += data
    raise SystemExit(f"timed out waiting for {pattern!r}; have {buf[-300:]!r}")

def send(s):
    os.write(fd, s.encode())

out = {}
read_until(rb"> ")
send("Lily had a red ball.\r")
out["turn1"] = read_until(rb"\(stream: [^)]*\)[^\n]*\n.*?> ", 60)
send("/mode none\r")
out["mode"] = read_until(rb"> ")
send("Tom saw a dog.\r")
out["turn2"] = read_until(rb"\(none: [^)]*\)[^\n]*\n.*?> ", 60)
# a long answer (thousands of tokens), interrupted as soon as it starts
send("/mode none\r")
read_until(rb"> ")
send("/reset\r")
read_until(rb"> ")
os.write(fd, b"")
send("The sun was hot.\r")
read_until(rb"The sun was hot\.\r?\n")
first = read_until(rb"\S")  # the first bytes of the answer
send("\x03")
out["cancel"] = first + read_until(rb"\[cancelled[^\n]*\n.*?> ", 30)
# Ctrl-C at the prompt: a fresh prompt, the program goes on
send("\x03")
time.sleep(0.3)
send("The cat ran.\r")
out["after"] = read_until(rb"\(none: [^)]*\)[^\n]*\n.*?> ", 60)
send("/quit\r")
_, status = os.waitpid(pid, 0)
out["exit"] = os.waitstatus_to_exitcode(status)
print(json.dumps(out))
