"""Real softphones for the end-to-end tests: PJSIP (pjsua2), one account per agent seat.

Usage: seat.py SERVER TRANSPORT DIR SEAT:PASSWORD [SEAT:PASSWORD ...]

Each SEAT registers at SERVER (host:port) over TRANSPORT (udp, tcp, or udp-nat: UDP as a
phone behind NAT that believes its address is 10.0.0.5 — that private address in its Contact
and SDP, not rewritten from what the registrar saw) with digest authentication, answers
every call at once, plays DIR/SEAT.wav into it (looped) and records what it hears into
DIR/SEAT.heard.wav. One JSON object per line on stdout tells what happens
({"seat": "8001", "event": "registered", "code": 200}, "incoming", "confirmed", "media",
"dtmf", "transfer", "disconnected", ...); one command per line on stdin acts: "SEAT hold",
"SEAT unhold", "SEAT dtmf DIGITS", "SEAT xfer URI", "SEAT hangup", or "quit". The
recordings are complete once it has said {"event": "stopped"} (after quit). PJSIP's own log
goes to stderr.
"""

import json
import os
import select
import sys

import pjsua2 as pj


def say(event, **fields):
    fields["event"] = event
    print(json.dumps(fields), flush=True)


MEDIA_STATUS = {
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}


class Call(pj.Call):
    def __init__(self, acc, call_id):
        super().__init__(acc, call_id)
        self.acc = acc
        self.player = None

    def onCallState(self, prm):
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            say("confirmed", seat=self.acc.seat)
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            say("disconnected", seat=self.acc.seat, code=ci.lastStatusCode,
                reason=ci.lastReason)

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for i, m in enumerate(ci.media):
            if m.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            say("media", seat=self.acc.seat, status=MEDIA_STATUS.get(m.status, str(m.status)))
            if m.status != pj.PJSUA_CALL_MEDIA_ACTIVE or self.player is not None:
                continue
            aud = self.getAudioMedia(i)
            self.player = pj.AudioMediaPlayer()
            self.player.createPlayer(self.acc.play)
            self.player.startTransmit(aud)
            # One recorder per seat, kept by the account: a seat's later calls go on
            # recording into the same file.
            aud.startTransmit(self.acc.recorder())

    def onDtmfDigit(self, prm):
        say("dtmf", seat=self.acc.seat, digit=prm.digit)

    def onCallTransferStatus(self, prm):
        # NOTIFY sipfrag of our REFER (RFC 3515 §2.4.5).
        say("transfer", seat=self.acc.seat, code=prm.statusCode, final=prm.finalNotify)


class Account(pj.Account):
    def __init__(self, seat, directory):
        super().__init__()
        self.seat = seat
        self.play = os.path.join(directory, f"{seat}.wav")
        self.record = os.path.join(directory, f"{seat}.heard.wav")
        self.rec = None
        self.calls = []

    def recorder(self):
        if self.rec is None:
            self.rec = pj.AudioMediaRecorder()
            self.rec.createRecorder(self.record)
        return self.rec

    def onRegState(self, prm):
        say("registered" if prm.code == 200 and prm.expiration > 0 else "registration",
            seat=self.seat, code=prm.code, expires=prm.expiration)

    def onIncomingCall(self, prm):
        call = Call(self, prm.callId)
        self.calls.append(call)
        say("incoming", seat=self.seat, remote=call.getInfo().remoteUri)
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)

    def live_call(self):
        live = [c for c in self.calls if c.isActive()]
        return live[-1] if live else None


def command(accounts, line):
    """Runs one command line; False on quit."""
    words = line.split()
    if not words:
        return True
    if words[0] == "quit":
        return False
    acc = accounts.get(words[0])
    call = acc.live_call() if acc else None
    if call is None or len(words) < 2:
        say("no_call", command=line.strip())
        return True
    op = pj.CallOpParam(True)
    what, args = words[1], words[2:]
    if what == "hold":
        call.setHold(op)
    elif what == "unhold":
        op.opt.flag = pj.PJSUA_CALL_UNHOLD
        call.reinvite(op)
    elif what == "dtmf":
        call.dialDtmf(args[0])
    elif what == "xfer":
        call.xfer(args[0], op)
    elif what == "hangup":
        call.hangup(op)
    else:
        say("error", message=f"unknown command {what}")
    return True


def main():
    server, transport, directory = sys.argv[1:4]
    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    # Callbacks run in this thread only, from libHandleEvents below.
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 3
    cfg.logConfig.consoleLevel = 3
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    ep.audDevManager().setNullDev()
    kind = pj.PJSIP_TRANSPORT_TCP if transport == "tcp" else pj.PJSIP_TRANSPORT_UDP
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = "127.0.0.1"
    tcfg.port = 0
    ep.transportCreate(kind, tcfg)
    ep.libStart()

    accounts = {}
    suffix = ";transport=tcp" if transport == "tcp" else ""
    for arg in sys.argv[4:]:
        seat, password = arg.split(":", 1)
        acfg = pj.AccountConfig()
        acfg.idUri = f"sip:{seat}@{server}"
        acfg.regConfig.registrarUri = f"sip:{server}{suffix}"
        acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", seat, 0, password))
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        if transport == "udp-nat":
            acfg.natConfig.contactRewriteUse = 0
            acfg.natConfig.viaRewriteUse = 0
            acfg.natConfig.sdpNatRewriteUse = 0
            acfg.sipConfig.contactForced = f"<sip:{seat}@10.0.0.5:5062>"
            acfg.mediaConfig.transportConfig.publicAddress = "10.0.0.5"
        acc = Account(seat, directory)
        acc.create(acfg)
        accounts[seat] = acc

    running = True
    while running:
        ep.libHandleEvents(10)
        ready, _, _ = select.select([sys.stdin], [], [], 0)
        if ready:
            line = sys.stdin.readline()
            running = bool(line) and command(accounts, line)
    for acc in accounts.values():
        acc.calls = []
    # Destroying the library closes the recordings (their WAV headers get their sizes).
    ep.libDestroy()
    say("stopped")


if __name__ == "__main__":
    main()
