# Sourced by scripts/train-digits.sh and scripts/loo-digits.sh (FSDD_DIR in $fsdd): checks the
# synthesizers, builds ssm-stream ($bin) and makes the spoken-digit data set in .build-digits/.
command -v espeak-ng >/dev/null || { echo "needs espeak-ng (apt install espeak-ng)" >&2; exit 1; }
command -v flite >/dev/null || { echo "needs flite (apt install flite)" >&2; exit 1; }
python3 -c "import numpy, scipy" || { echo "needs numpy and scipy (pip install numpy scipy)" >&2; exit 1; }
swift build -c release --product ssm-stream
bin=.build/release/ssm-stream
# The data set is made once (it is seeded: a second run writes the same bytes); one made before
# the recipe took the whispered training voices (synth/w-*, written last) or the noise folder it
# draws from (noise/), or before make-digits.py wrote the leave-one-out manifests (loo-*.csv), is made
# again.
{ grep -q "synth/w-" .build-digits/train.csv && [ -f .build-digits/noise/pink.wav ] \
    && [ -f .build-digits/loo-train-nicolas.csv ]; } 2>/dev/null \
    || python3 scripts/make-digits.py .build-digits --fsdd "$fsdd"
