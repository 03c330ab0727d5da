-- Interoperability: mq exchanges messages by integer key with Perl's core IPC::Msg and with
-- Python's sysv_ipc (/usr/bin/python3), both directions, with types and binary payloads.

local mq = require "mq"
local H = require "helpers"

local PYTHON = "/usr/bin/python3"

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function run(cmd, code, ...)
  local args = {}
  for i, a in ipairs({ ... }) do args[i] = H.shell_quote(a) end
  return H.sh(string.format("timeout 20 %s %s %s", cmd, H.shell_quote(code),
    table.concat(args, " ")))
end

local function perl(code, ...)
  return run("perl -MIPC::Msg -MIPC::SysV=IPC_CREAT,IPC_EXCL,S_IRUSR,S_IWUSR -e", code, ...)
end

local function python(code, ...)
  return run(PYTHON .. " -c", "import sys, sysv_ipc\n" .. code, ...)
end

-- A payload with every byte value and a marker, so messages are told apart.
local function payload(tag)
  return tag .. "\0" .. H.all_bytes() .. "\0" .. tag
end

local have_perl = (H.sh("perl -MIPC::Msg -e 1"))
local have_python = (H.sh(PYTHON .. " -c 'import sysv_ipc'"))

describe("interop", function()
  after_each(H.cleanup)

  if not have_perl then pending("with Perl IPC::Msg: perl with core IPC::Msg is not installed") end
  if have_perl then describe("with Perl IPC::Msg", function()

    it("receives what mq sends, honouring types", function()
      local q, key = H.fresh_key_queue()
      assert(q:send(payload("three"), 3))
      assert(q:send(payload("seven"), 7))
      assert(q:send("", 2))
      local ok, code, out = perl([[
        my $q = IPC::Msg->new($ARGV[0], 0) or die "msgget: $!";
        my @out;
        for my $type (7, 0, 0) {
          my $buf;
          my $t = $q->rcv($buf, 65536, $type, 0);
          defined $t or die "msgrcv: $!";
          push @out, "$t:" . unpack("H*", $buf);
        }
        print join(" ", @out);]], key)
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal(string.format("7:%s 3:%s 2:", hex(payload("seven")),
        hex(payload("three"))), out)
      assert.are.equal(0, q:stat().messages)
      q:close()
    end)

    it("sends what mq receives, honouring types", function()
      local q, key = H.fresh_key_queue()
      local ok, code, out = perl([[
        my $q = IPC::Msg->new($ARGV[0], 0) or die "msgget: $!";
        $q->snd(4, pack("H*", $ARGV[1]), 0) or die "msgsnd: $!";
        $q->snd(9, pack("H*", $ARGV[2]), 0) or die "msgsnd: $!";
        print "sent";]], key, hex(payload("four")), hex(payload("nine")))
      assert(ok, tostring(code) .. ": " .. out)
      local data, t = q:receive(9)
      assert.are.equal(payload("nine"), data)
      assert.are.equal(9, t)
      data, t = q:receive(-5)
      assert.are.equal(payload("four"), data)
      assert.are.equal(4, t)
      q:close()
    end)

    it("creates a queue by key that mq opens, and mq's destroy removes it", function()
      local key = H.track(H.unused_key())
      local ok, code, out = perl([[
        my $q = IPC::Msg->new($ARGV[0], IPC_CREAT | IPC_EXCL | S_IRUSR | S_IWUSR)
          or die "msgget: $!";
        $q->snd(6, pack("H*", $ARGV[1]), 0) or die "msgsnd: $!";
        print $q->id;]], key, hex(payload("from perl")))
      assert(ok, tostring(code) .. ": " .. out)
      local q = assert(mq.open(key))
      assert.are.equal(tonumber(out), q:id())
      local data, t = q:receive()
      assert.are.equal(payload("from perl"), data)
      assert.are.equal(6, t)
      assert.is_true(q:destroy())
      H.fails("notfound", mq.open(key))
    end)
  end) end

  if not have_python then
    pending("with Python sysv_ipc: " .. PYTHON .. " cannot import sysv_ipc (python3-sysv-ipc)")
  end
  if have_python then describe("with Python sysv_ipc", function()

    it("receives what mq sends, honouring types", function()
      local q, key = H.fresh_key_queue()
      assert(q:send(payload("one"), 1))
      assert(q:send(payload("twelve"), 12))
      assert(q:send(string.rep("\255\0", 4096), 5))   -- msgmax bytes
      local ok, code, out = python([[
q = sysv_ipc.MessageQueue(int(sys.argv[1]), max_message_size=8192)
out = []
for wanted in (12, -10, 0):
    msg, t = q.receive(block=True, type=wanted)
    out.append("%d:%s" % (t, msg.hex()))
print(" ".join(out), end="")]], key)
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal(string.format("12:%s 1:%s 5:%s", hex(payload("twelve")),
        hex(payload("one")), hex(string.rep("\255\0", 4096))), out)
      q:close()
    end)

    it("sends what mq receives, honouring types", function()
      local q, key = H.fresh_key_queue()
      local ok, code, out = python([[
q = sysv_ipc.MessageQueue(int(sys.argv[1]))
q.send(bytes.fromhex(sys.argv[2]), block=True, type=2)
q.send(b"", block=True, type=3)
q.send(bytes.fromhex(sys.argv[3]), block=True, type=2**30)
print("sent", end="")]], key, hex(payload("two")), hex(payload("big type")))
      assert(ok, tostring(code) .. ": " .. out)
      local data, t = q:receive(1 << 30)
      assert.are.equal(payload("big type"), data)
      assert.are.equal(1 << 30, t)
      data, t = q:receive(3)
      assert.are.equal("", data)
      assert.are.equal(3, t)
      data, t = q:receive()
      assert.are.equal(payload("two"), data)
      assert.are.equal(2, t)
      q:close()
    end)

    it("opens by key a queue mq made by name, and sees mq's stat", function()
      local n = H.name("interop")
      local q = assert(mq.new(n, "0640"))
      assert(q:send(payload("named"), 8))
      local ok, code, out = python([[
q = sysv_ipc.MessageQueue(int(sys.argv[1]))
msg, t = q.receive(type=8)
print(q.id, oct(q.mode), t, msg.hex(), end="")]], q:key())
      assert(ok, tostring(code) .. ": " .. out)
      assert.are.equal(string.format("%d 0o640 8 %s", q:id(), hex(payload("named"))), out)
      q:close()
    end)

    it("creates a queue by key that mq opens and reads", function()
      local key = H.track(H.unused_key())
      local ok, code, out = python([[
q = sysv_ipc.MessageQueue(int(sys.argv[1]), sysv_ipc.IPC_CREX, mode=0o600)
q.send(bytes.fromhex(sys.argv[2]), type=77)
print(q.id, end="")]], key, hex(payload("from python")))
      assert(ok, tostring(code) .. ": " .. out)
      local q = assert(mq.open(key))
      assert.are.equal(tonumber(out), q:id())
      local data, t = q:receive()
      assert.are.equal(payload("from python"), data)
      assert.are.equal(77, t)
      q:close()
    end)
  end) end
end)
