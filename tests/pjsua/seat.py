"""A real softphone for the end-to-end tests: PJSIP (pjsua2) registered as an agent seat.

Usage: seat.py SERVER SEAT PASSWORD TRANSPORT PLAY_WAV RECORD_WAV

It registers SEAT at SERVER (host:port) over TRANSPORT (udp or tcp) with digest
authentication, answers every call at once, plays PLAY_WAV into the call (looped) and records
what it hears into RECORD_WAV. It prints one JSON object per line on stdout for each thing
that happens ({"event": "registered", "code": 200}, "incoming", "confirmed", "media",
"dtmf", "disconnected", ...) and obeys one command per line on stdin: hold, unhold, dtmf
DIGITS, hangup, quit. RECORD_WAV is complete once it has said "stopped" (after quit).
PJSIP's own log goes to stderr.
"""

import json
import select
import sys

import pjsua2 as pj


def say(event, **fields):
    fields["event"] = event
    print(json.dumps(fields), flush=True)


class Call(pj.Call):
    def __init__(self, acc, call_id, play, record):
        super().__init__(acc, call_id)
        self.play_path = play
        self.record_path = record
        self.player = None
        self.recorder = None

    def onCallState(self, prm):
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONFIRMED:
            say("confirmed")
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            say("disconnected", code=ci.lastStatusCode, reason=ci.lastReason)

    def onCallMediaState(self, prm):
        ci = self.getInfo()
        for i, m in enumerate(ci.media):
            if m.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = {
                pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
                pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
                pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
                pj.PJSUA_CALL_MEDIA_NONE: "none",
                pj.PJSUA_CALL_MEDIA_ERROR: "error",
            }.get(m.status, str(m.status))
            say("media", status=status)
            if m.status != pj.PJSUA_CALL_MEDIA_ACTIVE or self.player is not None:
                continue
            aud = self.getAudioMedia(i)
            self.player = pj.AudioMediaPlayer()
            self.player.createPlayer(self.play_path)
            self.player.startTransmit(aud)
            self.recorder = pj.AudioMediaRecorder()
            self.recorder.createRecorder(self.record_path)
            aud.startTransmit(self.recorder)

    def onDtmfDigit(self, prm):
        say("dtmf", digit=prm.digit)


class Account(pj.Account):
    def __init__(self, play, record):
        super().__init__()
        self.play = play
        self.record = record
        self.calls = []

    def onRegState(self, prm):
        say("registered" if prm.code == 200 and prm.expiration > 0 else "registration",
            code=prm.code, expires=prm.expiration)

    def onIncomingCall(self, prm):
        call = Call(self, prm.callId, self.play, self.record)
        self.calls.append(call)
        say("incoming", remote=call.getInfo().remoteUri)
        op = pj.CallOpParam()
        op.statusCode = 200
        call.answer(op)


def main():
    server, seat, password, transport, play, record = sys.argv[1:7]
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

    acfg = pj.AccountConfig()
    suffix = ";transport=tcp" if transport == "tcp" else ""
    acfg.idUri = f"sip:{seat}@{server}"
    acfg.regConfig.registrarUri = f"sip:{server}{suffix}"
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", seat, 0, password))
    acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    acc = Account(play, record)
    acc.create(acfg)

    running = True
    while running:
        ep.libHandleEvents(10)
        ready, _, _ = select.select([sys.stdin], [], [], 0)
        if not ready:
            continue
        line = sys.stdin.readline()
        if not line:
            break
        cmd = line.split()
        if not cmd:
            continue
        live = [c for c in acc.calls if c.isActive()]
        op = pj.CallOpParam(True)
        if cmd[0] == "quit":
            running = False
        elif not live:
            say("error", message=f"no call for {cmd[0]}")
        elif cmd[0] == "hold":
            live[-1].setHold(op)
        elif cmd[0] == "unhold":
            op.opt.flag = pj.PJSUA_CALL_UNHOLD
            live[-1].reinvite(op)
        elif cmd[0] == "dtmf":
            live[-1].dialDtmf(cmd[1])
        elif cmd[0] == "hangup":
            live[-1].hangup(op)
    acc.calls = []
    # Destroying the library closes the recording (its WAV header gets its sizes).
    ep.libDestroy()
    say("stopped")


if __name__ == "__main__":
    main()
