"""Every path the tests read, named once: the repository's folders and its real data sets.

All the data ships in the repository, so the suite runs on a fresh clone with nothing beside it:
``pipelines/data`` holds the ready pipelines' data sets (sources and licences in its README),
``tests/data`` small subsets kept for the tests alone (each with its README and licence). A path
here that does not exist is a broken checkout, and the tests that read it fail (see
``test_data_paths.py``); none of them skips.
"""

from __future__ import annotations

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
PROJECT_DIR = TESTS_DIR.parent
PIPELINES = PROJECT_DIR / "pipelines"
DATA = PIPELINES / "data"

#: 1797 PNG, 8x8 grayscale, class folders 0-9 (UCI optdigits via scikit-learn).
DIGITS = DATA / "digits"
#: 500 JPEG, 100x100 RGB, class folders 0-9 (sign-language digits).
SIGN_DIGITS = DATA / "sign_digits"
#: 960 WAV, 8 kHz mono, class folders 0-9, ``<digit>_<speaker>_<n>.wav`` (FSDD).
SPOKEN_DIGITS = DATA / "spoken_digits"
#: 4489 SMS, columns ``text,label`` (ham/spam).
SMS_CSV = DATA / "sms_spam" / "sms_spam.csv"
#: 2399 sentences, columns ``text,label`` (0/1).
SENTIMENT_CSV = DATA / "sentiment" / "sentiment_sentences.csv"
#: 442 patients, 10 numeric columns and the target (regression).
DIABETES_CSV = DATA / "diabetes" / "diabetes.csv"
#: 15,002 Chicago taxi trips, 18 columns with empty cells (TFX's taxi example sample).
TAXI_CSV = DATA / "chicago_taxi" / "data.csv"
#: 4 WAV of the word "yes", 16 kHz mono (Speech Commands v0.01).
SPEECH_COMMANDS = TESTS_DIR / "data" / "speech_commands"

#: Every data set above, by name (``test_data_paths.py`` checks that each one ships).
DATA_SETS = {
    "digits": DIGITS,
    "sign_digits": SIGN_DIGITS,
    "spoken_digits": SPOKEN_DIGITS,
    "sms_spam": SMS_CSV,
    "sentiment": SENTIMENT_CSV,
    "diabetes": DIABETES_CSV,
    "chicago_taxi": TAXI_CSV,
    "speech_commands": SPEECH_COMMANDS,
}
