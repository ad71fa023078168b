"""Checks tpmlab reference's output against the event log it came from,
parsed here on its own (stdlib only, not tpmlab's decoder), and against the
field list Keylime documents (keylime/mba/elchecking/example.py,
keylime/policy/create_mb_policy.py at v7.14.3-7-g9b1f6e6a).

  reference_check.py OUT_DIR LOG_FILE [EXPECTED_PCRS_JSON]

EXPECTED_PCRS_JSON ({bank: {"0": hex}}) is the PCRs the export must hold;
without it, the log's own replay here."""
import hashlib, json, re, struct, sys

ALGS = {0x0004: "sha1", 0x000B: "sha256", 0x000C: "sha384", 0x000D: "sha512"}
EV_NO_ACTION, EV_IPL, EV_S_CRTM_VERSION = 0x3, 0xD, 0x8
EV_BLOB, EV_BLOB2 = 0x80000008, 0x8000000A
EV_DRIVER_CONFIG, EV_BSA, EV_AUTHORITY = 0x80000001, 0x80000003, 0x800000E0


def parse(raw):
    """Crypto-agile log -> (banks, [(pcr, type, {alg: digest}, data)])."""
    pcr, etype, _, size = struct.unpack_from("<II20sI", raw, 0)
    spec = raw[32:32 + size]
    assert spec[:16] == b"Spec ID Event03\0", "not a crypto-agile log"
    count = struct.unpack_from("<I", spec, 24)[0]
    sizes = {}
    for i in range(count):
        alg, dsize = struct.unpack_from("<HH", spec, 28 + 4 * i)
        sizes[alg] = dsize
    at, events = 32 + size, []
    while at + 12 <= len(raw):
        pcr, etype, n = struct.unpack_from("<III", raw, at)
        if pcr == 0 and etype == 0 and n == 0:
            break  # a zero-filled tail
        at += 12
        digests = {}
        for _ in range(n):
            alg = struct.unpack_from("<H", raw, at)[0]
            digests[ALGS.get(alg, alg)] = raw[at + 2:at + 2 + sizes[alg]]
            at += 2 + sizes[alg]
        dsize = struct.unpack_from("<I", raw, at)[0]
        events.append((pcr, etype, digests, raw[at + 4:at + 4 + dsize]))
        at += 4 + dsize
    return [ALGS[a] for a in sizes if a in ALGS], events


def replay(banks, events):
    pcrs = {b: {} for b in banks}
    for pcr, etype, digests, _ in events:
        if etype == EV_NO_ACTION:
            continue
        for b in (b for b in banks if b in digests):  # (some logs leave a bank out of an event)
            size = hashlib.new(b).digest_size
            old = pcrs[b].get(pcr, bytes(size))
            pcrs[b][pcr] = hashlib.new(b, old + digests[b]).digest()
    return {b: {str(p): v.hex() for p, v in vals.items()} for b, vals in pcrs.items()}


def variable(data):
    name_len, data_len = struct.unpack_from("<QQ", data, 16)
    name = data[32:32 + 2 * name_len].decode("utf-16-le")
    return name, data[32 + 2 * name_len:32 + 2 * name_len + data_len]


def guid(b):
    a, b2, c = struct.unpack_from("<IHH", b, 0)
    return "%08x-%04x-%04x-%s-%s" % (a, b2, c, b[8:10].hex(), b[10:16].hex())


def signatures(v):
    keys, at = [], 0
    while at < len(v):
        list_size, header, sig = struct.unpack_from("<III", v, at + 16)
        for s in range(at + 28 + header, at + list_size, sig):
            keys.append({"SignatureOwner": guid(v[s:s + 16]), "SignatureData": "0x" + v[s + 16:s + sig].hex()})
        at += list_size
    return keys


def text(data):
    return data.rstrip(b"\0").decode("latin-1")


def main():
    out, log_file = sys.argv[1], sys.argv[2]
    banks, events = parse(open(log_file, "rb").read())
    golden = json.load(open(out + "/golden-pcrs.json"))
    assert golden["format"] == "tpmlab golden PCRs" and golden["version"] == 1, golden.keys()
    replayed = replay(banks, events)
    # Every PCR the log extends holds its replay (or the independent one given), in every bank.
    expected = json.load(open(sys.argv[3])) if len(sys.argv) > 3 else replayed
    for bank, vals in expected.items():
        assert vals, bank
        for pcr, value in vals.items():
            assert golden["pcrs"][bank][pcr] == value, (bank, pcr)

    # tpm_policy: the PCRs the log extends but 10 and 16, each bank's value, sha1 first.
    policy = json.load(open(out + "/keylime/tpm_policy.json"))
    masked = json.load(open(out + "/keylime/tpm_policy_with_mask.json"))
    extended = sorted({int(p) for vals in replayed.values() for p in vals} - {10, 16})
    assert sorted(int(k) for k in policy) == extended, (sorted(policy), extended)
    for k, values in policy.items():
        assert all(re.fullmatch("[0-9a-f]+", v) for v in values), k
        assert values == [golden["pcrs"][b][k] for b in sorted(golden["pcrs"], key=lambda b: list(ALGS.values()).index(b))], k
    assert masked.pop("mask") == hex(sum(1 << p for p in extended)) and masked == policy

    if "sha256" not in banks:
        return
    mb = json.load(open(out + "/keylime/mb_refstate.json"))
    # The documented fields, in create_mb_policy's order; kernels only when it could fill them.
    fields = ["has_secureboot", "scrtm_and_bios", "pk", "kek", "db", "dbx", "vendor_db", "mokdig", "mokxdig", "kernels"]
    assert list(mb) in (fields, fields[:-1]), list(mb)
    hex0x = re.compile("0x[0-9a-f]+")
    sha = lambda e: {"sha256": "0x" + e[2]["sha256"].hex()} if "sha256" in e[2] else {}

    secure = next((variable(e[3])[1][:1] == b"\1" for e in events
                   if e[1] == EV_DRIVER_CONFIG and variable(e[3])[0] == "SecureBoot"), False)
    assert mb["has_secureboot"] is secure
    bios = mb["scrtm_and_bios"]
    assert len(bios) == 1 and set(bios[0]) <= {"scrtm", "platform_firmware"}
    crtm = [sha(e) for e in events if e[0] == 0 and e[1] == EV_S_CRTM_VERSION]
    assert bios[0].get("scrtm") == (crtm[0] if crtm else None)
    assert bios[0]["platform_firmware"] == [sha(e) for e in events if e[0] == 0 and e[1] in (EV_BLOB, EV_BLOB2)]
    for d in ([bios[0]["scrtm"]] if crtm else []) + bios[0]["platform_firmware"] + mb["mokdig"] + mb["mokxdig"]:
        assert d == {} or (set(d) == {"sha256"} and hex0x.fullmatch(d["sha256"])), d
    for name in ("pk", "kek", "db", "dbx"):
        measured = [signatures(variable(e[3])[1]) for e in events
                    if e[1] == EV_DRIVER_CONFIG and variable(e[3])[0].lower() == name]
        assert mb[name] == (measured[-1] if measured else []), name
        for key in mb[name]:
            assert set(key) == {"SignatureOwner", "SignatureData"} and hex0x.fullmatch(key["SignatureData"])
    assert mb["mokdig"] == [sha(e) for e in events if e[1] == EV_IPL and text(e[3]) == "MokList"]
    assert mb["mokxdig"] == [sha(e) for e in events if e[1] == EV_IPL and text(e[3]) == "MokListX"]
    if "kernels" in mb:
        assert len(mb["kernels"]) == 1
        k = mb["kernels"][0]
        allowed = {"shim_authcode_sha256", "grub_authcode_sha256", "initrd_plain_sha256", "kernel_cmdline",
                   "kernel_authcode_sha256" if secure else "vmlinuz_plain_sha256"}
        assert set(k) <= allowed, set(k) - allowed
        # Applications built into the firmware (a volume node, then a file node) are not shim or GRUB.
        def from_firmware(data):
            dp = data[32:]
            return dp[:2] == b"\x04\x07" and dp[struct.unpack_from("<H", dp, 2)[0]:][:2] == b"\x04\x06"
        apps = ["0x" + e[2]["sha256"].hex() for e in events if e[1] == EV_BSA and not from_firmware(e[3])]
        assert apps[:2] == [k["shim_authcode_sha256"], k["grub_authcode_sha256"]], apps
        if secure:
            assert apps[2] == k["kernel_authcode_sha256"]
        ipl9 = [e for e in events if e[1] == EV_IPL and e[0] == 9]
        initrd = [e for e in ipl9 if "initrd" in text(e[3]) or "initramfs" in text(e[3])]
        assert k.get("initrd_plain_sha256") == ("0x" + initrd[0][2]["sha256"].hex() if initrd else None)
        cmdlines = [text(e[3]) for e in events if e[1] == EV_IPL and e[0] == 8 and "kernel_cmdline" in text(e[3])]
        if cmdlines:
            # What create_mb_policy writes, and what Keylime's example policy then matches.
            assert k["kernel_cmdline"] == re.escape(cmdlines[0][len("kernel_cmdline: "):]), k["kernel_cmdline"]
            if cmdlines[0].startswith("kernel_cmdline: "):  # (older GRUB logs "grub_kernel_cmdline …": Keylime cuts it the same)
                assert re.fullmatch("kernel_cmdline: " + k["kernel_cmdline"], cmdlines[0])
        for key, v in k.items():
            assert key == "kernel_cmdline" or hex0x.fullmatch(v), key
    print("checked", out, "against", log_file, "fields:", list(mb), list(mb.get("kernels", [{}])[0]))


main()
