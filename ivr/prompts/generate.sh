#!/usr/bin/env bash
# Renders the default Mandarin prompt set from zh-CN.tsv (name<TAB>text) into 8 kHz mono
# 16-bit WAVs under zh-CN/, the format the gateway plays without resampling.
# Needs espeak-ng (voice cmn) and sox. Re-run after editing zh-CN.tsv; the output is
# deterministic for a given espeak-ng and sox version (sox -R: repeatable dither), so
# unchanged prompts produce unchanged files.
# Also renders moh/default.wav, a short synthetic music-on-hold loop.
set -euo pipefail
cd "$(dirname "$0")"
out=zh-CN
# 290 words/min: espeak-ng Mandarin is slow at its default; this stays clear and keeps the
# whole set under 3 MB.
speed=${SPEED:-290}
tmp=$(mktemp -d)
# sox "%N" is N semitones from A4 (440 Hz).
note_to_semitones() {
    local -A base=([C]=-9 [D]=-7 [E]=-5 [F]=-4 [G]=-2 [A]=0 [B]=2)
    local n=${1:0:1} octave=${1:1}
    echo $(( base[$n] + (octave - 4) * 12 ))
}
trap 'rm -rf "$tmp"' EXIT

while IFS=$'\t' read -r name text; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    mkdir -p "$out/$(dirname "$name")"
    espeak-ng -v cmn -s "$speed" -w "$tmp/raw.wav" "$text"
    # Trim leading/trailing silence so that fragments concatenate naturally ("两千元"),
    # shorten pauses inside a phrase to 0.25 s, normalise to -3 dBFS (with headroom against
    # clipping in the resampler), then resample to telephone rate.
    sox -R -V1 "$tmp/raw.wav" -r 8000 -c 1 -b 16 "$out/$name.wav" \
        silence -l 1 0.02 0.5% -1 0.25 0.5% reverse silence 1 0.02 0.5% reverse norm -3 pad 0 0.08
done < zh-CN.tsv

# Music on hold: a soft arpeggio (C, Am, F, G; 16 notes of 0.3 s = 4.8 s) that loops cleanly
# because it ends on the dominant and every note fades in and out.
mkdir -p "$out/moh"
notes=(C4 E4 G4 E4 A3 C4 E4 C4 F3 A3 C4 A3 G3 B3 D4 B3)
parts=()
for i in "${!notes[@]}"; do
    sox -R -n -r 8000 -c 1 -b 16 "$tmp/note$i.wav" synth 0.3 sine "%$(note_to_semitones "${notes[$i]}")" \
        fade h 0.03 0.3 0.1 vol 0.25
    parts+=("$tmp/note$i.wav")
done
sox -R "${parts[@]}" "$out/moh/default.wav"
du -sh "$out"
