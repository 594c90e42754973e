"""The words of the built-in world: synonyms for every canonical value, shared by the caption
grammar (which picks among them) and the prompt parser (which maps them back).

Lists marked "caption" are the phrasings the grammar writes; the parser knows all of them
plus the extra variants a person might type.
"""

from __future__ import annotations

# --- colours ---------------------------------------------------------------------------
COLOR_WORDS = {c: [c] for c in ("red", "orange", "yellow", "green", "blue", "purple", "pink",
                                "white", "black", "brown", "cyan")}
COLOR_WORDS["gray"] = ["gray", "grey"]

# --- shapes: (singular, plural) nouns; the first pair is the canonical word -----------------
SHAPE_NOUNS = {
    "ball": [("ball", "balls")],
    "square": [("square", "squares"), ("box", "boxes"), ("cube", "cubes")],
    "triangle": [("triangle", "triangles")],
    "star": [("star", "stars")],
    "car": [("car", "cars")],
    "person": [("person", "people"), ("man", "men"), ("woman", "women")],
    "bird": [("bird", "birds")],
    "fish": [("fish", "fish")],
    "boat": [("boat", "boats"), ("sailboat", "sailboats")],
    "balloon": [("balloon", "balloons")],
    "airplane": [("airplane", "airplanes"), ("plane", "planes")],
}
# Understood but never written by the grammar.
EXTRA_SHAPE_NOUNS = {
    "ball": [("circle", "circles"), ("sphere", "spheres")],
    "square": [("block", "blocks")],
    "person": [("persons", "persons"), ("figure", "figures"), ("guy", "guys"),
               ("lady", "ladies"), ("pedestrian", "pedestrians"), ("boy", "boys"),
               ("girl", "girls"), ("child", "children")],
    "fish": [("fishes", "fishes")],
    "boat": [("ship", "ships"), ("sailing boat", "sailing boats")],
    "airplane": [("aeroplane", "aeroplanes"), ("jet", "jets"), ("aircraft", "aircraft"),
                 ("airliner", "airliners")],
}

# --- sizes, speeds ------------------------------------------------------------------------
SIZE_WORDS = {"small": ["small", "little", "tiny"], "large": ["big", "large", "huge"],
              "medium": ["medium-sized", "medium sized", "medium"]}
EXTRA_SIZE_WORDS = {"large": ["giant", "enormous", "very big", "very large"],
                    "small": ["very small", "tiny little"], "medium": ["mid-sized", "mid sized"]}
SPEED_WORDS = {"slow": ["slowly", "slow", "gently"], "fast": ["quickly", "fast", "rapidly"]}
EXTRA_SPEED_WORDS = {"slow": ["very slowly", "leisurely", "lazily", "gradually"],
                     "fast": ["very fast", "very quickly", "swiftly", "quick", "speedily",
                              "briskly", "at high speed", "at speed", "hurriedly"],
                     "normal": ["steadily", "at normal speed", "at a steady pace"]}

# --- motion ------------------------------------------------------------------------------
# Verbs of travel: direction comes from left/right (or up/down) words. (base, 3rd, -ing)
TRAVEL_VERBS = [("move", "moves", "moving"), ("go", "goes", "going"),
                ("drift", "drifts", "drifting"), ("drive", "drives", "driving"),
                ("walk", "walks", "walking"), ("swim", "swims", "swimming"),
                ("fly", "flies", "flying"), ("roll", "rolls", "rolling"),
                ("sail", "sails", "sailing"), ("glide", "glides", "gliding"),
                ("slide", "slides", "sliding"), ("travel", "travels", "travelling"),
                ("run", "runs", "running")]
EXTRA_TRAVEL = ["traveling", "heading", "heads", "head", "cruising", "cruises", "cruise",
                "racing", "races", "speeding", "speeds", "marching", "crossing", "crosses",
                "passing", "passes", "zooming", "zooms", "wandering", "wanders", "strolling",
                "strolls", "paddling", "soaring", "soars", "hurrying", "dashing", "jogging",
                "jogs", "riding", "rides", "moved", "went", "headed", "drove", "walked", "flew",
                "swam", "sailed", "rolled", "drifted", "floated", "travelled", "traveled"]
# Which travel verbs fit which shape in captions ("a fish swimming", "a car driving").
TRAVEL_FOR_SHAPE = {
    "ball": ["move", "roll", "go", "drift", "slide"], "square": ["move", "slide", "go", "drift"],
    "triangle": ["move", "slide", "go", "drift"], "star": ["move", "drift", "fly", "go"],
    "car": ["drive", "move", "go"], "person": ["walk", "move", "go", "run"],
    "bird": ["fly", "move", "go"], "fish": ["swim", "move", "go", "drift"],
    "boat": ["sail", "drift", "move", "go"], "balloon": ["drift", "move", "fly", "go"],
    "airplane": ["fly", "move", "go", "travel"],
}
DIRECTION_PHRASES = {  # caption forms after a travel verb
    "left": ["left", "to the left", "leftward", "towards the left", "from right to left"],
    "right": ["right", "to the right", "rightward", "towards the right", "from left to right"],
}
# Complete motion phrases, caption forms: (after the noun: finite, -ing), (before the noun).
MOTION_PHRASES = {
    "up": {"finite": ["rises", "floats up", "moves up", "goes up", "drifts up", "moves upward"],
           "ing": ["rising", "floating up", "moving up", "going up", "drifting up",
                   "moving upward", "ascending"],
           "pre": ["rising"]},
    "down": {"finite": ["falls", "sinks", "moves down", "goes down", "drifts down", "drops"],
             "ing": ["falling", "sinking", "moving down", "going down", "drifting down",
                     "dropping", "descending"],
             "pre": ["falling", "sinking"]},
    "bounce": {"finite": ["bounces", "bounces along", "bounces up and down"],
               "ing": ["bouncing", "bouncing along", "bouncing up and down"],
               "pre": ["bouncing"]},
    "spin": {"finite": ["spins", "rotates", "spins around", "turns around"],
             "ing": ["spinning", "rotating", "spinning around", "turning around"],
             "pre": ["spinning", "rotating"]},
    "grow": {"finite": ["grows", "gets bigger", "grows larger", "expands"],
             "ing": ["growing", "getting bigger", "growing larger", "expanding"],
             "pre": ["growing", "expanding"]},
    "shrink": {"finite": ["shrinks", "gets smaller", "contracts"],
               "ing": ["shrinking", "getting smaller", "contracting"],
               "pre": ["shrinking"]},
    "still": {"finite": ["stands still", "rests", "sits", "stays still", "does not move"],
              "ing": ["standing still", "resting", "sitting", "sitting still", "not moving",
                      "staying still"],
              "pre": ["motionless", "stationary", "resting"]},
}
EXTRA_MOTION = {
    "up": ["rise", "float up", "move up", "go up", "fly up", "flies up", "flying up",
           "ascends", "ascend", "climbing", "climbs", "lifting off", "floating upward",
           "floats upward", "drift up", "moving upwards", "rose"],
    "down": ["fall", "sink", "drop", "move down", "go down", "descends", "descend",
             "plunging", "plunges", "falling down", "falls down", "fell", "sank", "dropped"],
    "bounce": ["bounce", "bouncy", "hopping", "hops", "hop", "jumping", "jumps", "jump",
               "bounced", "bouncing around", "bounces around"],
    "spin": ["spin", "rotate", "twirling", "twirls", "whirling", "whirls", "spun",
             "spinning round", "turning round", "rotated", "revolving", "revolves"],
    "grow": ["grow", "expand", "getting larger", "gets larger", "growing bigger",
             "grows bigger", "inflating", "inflates", "swelling", "swells", "grew",
             "growing in size", "grows in size", "enlarging", "enlarges"],
    "shrink": ["shrink", "contract", "deflating", "deflates", "shrank", "shrunk",
               "shrinking in size", "getting tinier", "growing smaller", "grows smaller"],
    "still": ["still", "stand still", "standing", "stands", "stand", "sit", "sitting there",
              "rest", "at rest", "motionless", "stationary", "not moving", "doesnt move",
              "idle", "parked", "hovering", "hovers", "floating", "floats", "float", "lying",
              "lies", "waiting", "waits", "stay still", "remains still", "remaining still",
              "staying put", "stays put", "sitting motionless", "standing motionless",
              "perched", "sat", "stood"],
}

# --- settings ------------------------------------------------------------------------------
# Caption forms: noun phrases (a whole caption can be one) and prepositional phrases.
SETTING_NP = {
    "field": ["a grass field", "a grassy field", "a meadow", "a park", "a sunny meadow"],
    "ocean": ["a beach", "the ocean", "the sea", "the open sea"],
    "desert": ["a desert", "the desert", "a sandy desert"],
    "snow": ["a snowy field", "a snow-covered field", "a winter landscape"],
    "sunset": ["a sunset", "the dusk sky", "a landscape at sunset"],
    "night": ["the night", "a clear night", "a landscape at night"],
    "city": ["a city at night", "a city street at night", "the city at night"],
    "underwater": ["an underwater scene", "the deep underwater world"],
    "space": ["outer space", "space", "deep space"],
}
SETTING_PP = {
    "field": ["on a grass field", "in a grassy field", "in a meadow", "across a meadow",
              "in a park", "on a sunny day", "over a grass field", "in a park on a sunny day",
              "across a grass field"],
    "ocean": ["on a beach", "at the beach", "over the ocean", "on the ocean", "by the sea",
              "over the sea", "on the sea", "above the ocean"],
    "desert": ["in the desert", "across the desert", "in a sandy desert", "over the desert"],
    "snow": ["on a snowy field", "across a snow-covered field", "in winter",
             "on a winter day", "in a snowy field", "on a snow-covered field"],
    "sunset": ["at sunset", "at dusk", "during sunset", "under a sunset sky"],
    "night": ["at night", "in the night", "under the night sky", "on a clear night"],
    "city": ["in a city at night", "on a city street at night", "down a city street at night",
             "through the city at night", "along a city street at night"],
    "underwater": ["underwater", "under water", "under the sea", "deep underwater"],
    "space": ["in outer space", "through outer space", "in space", "through space",
              "across outer space"],
}
# Understood by the parser (in any sentence position); longest phrase wins.
SETTING_KEYWORDS = {
    "field": ["grass field", "grassy field", "field of grass", "grass", "grassy", "meadow",
              "park", "sunny day", "sunny", "field", "grassland", "lawn", "countryside",
              "sunny meadow", "fields", "meadows", "hill", "hills"],
    "ocean": ["beach", "ocean", "sea", "seaside", "shore", "water", "lake", "waves", "coast",
              "open sea", "bay", "river", "seashore", "oceans"],
    "desert": ["desert", "sandy desert", "sand dunes", "dunes", "sand", "sandy", "dune"],
    "snow": ["snowy field", "snow covered field", "snow field", "snowfield", "winter",
             "snowy", "snow covered", "snowy landscape", "snow", "winter landscape",
             "winter day", "snowy meadow", "tundra", "snowy hills", "wintry",
             "covered with snow", "covered in snow", "snow covered ground"],
    "sunset": ["sunset", "dusk", "sundown", "twilight", "sunset sky", "dusk sky",
               "evening"],
    "night": ["night", "nighttime", "night sky", "clear night", "starry night", "midnight",
              "night time"],
    "city": ["city", "city street", "city at night", "city street at night", "street",
             "streets", "downtown", "town", "road", "city streets", "skyline"],
    "underwater": ["underwater", "under water", "under the sea", "under the ocean",
                   "under the water", "beneath the sea", "beneath the waves",
                   "deep underwater", "underwater world", "deep sea", "sea floor",
                   "seabed", "ocean floor", "below the surface", "undersea", "reef",
                   "coral reef", "aquarium"],
    "space": ["space", "outer space", "deep space", "cosmos", "galaxy", "orbit",
              "the universe"],
}

# --- weather and camera ------------------------------------------------------------------
WEATHER_PHRASES = {  # caption forms (appended to a sentence or leading it)
    "rain": ["while it rains", "in the rain", "as it rains", "while it is raining",
             "with rain falling", "in the pouring rain", "during a rain shower"],
    "snow": ["while it snows", "as it snows", "while it is snowing", "with snow falling",
             "in falling snow", "as snow falls", "during a snowfall"],
}
WEATHER_KEYWORDS = {
    "rain": ["rain", "rains", "raining", "rainy", "rainfall", "rainstorm", "downpour",
             "drizzle", "drizzling", "rain shower", "pouring rain", "rained", "raindrops",
             "storm", "stormy", "thunderstorm", "it rains", "it is raining", "rain falling",
             "rain falls", "rain is falling", "falling rain", "rain pours", "pouring",
             # weather verbs that carry a direction: the rain's, not the subject's
             "rain pours down", "rain pouring down", "rain comes down", "rain coming down",
             "rain falls down", "rain falling down", "rain drizzles down"],
    "snow": ["snows", "snowing", "snowfall", "snowflakes", "falling snow", "snow falls",
             "snow falling", "snow is falling", "snowstorm", "blizzard", "it snows",
             "it is snowing", "snowed", "flurries", "snow flurries", "snow shower",
             "falling snowflakes",
             "snow drifts down", "snow drifting down", "snow comes down", "snow coming down",
             "snow falls down", "snow falling down", "snowflakes drift down",
             "snowflakes drifting down", "snowflakes fall", "snowflakes falling"],
}
CAMERA_PHRASES = {  # caption forms
    "pan_left": ["as the camera pans left", "while the camera pans to the left",
                 "with the camera panning left", "the camera pans left", "panning left"],
    "pan_right": ["as the camera pans right", "while the camera pans to the right",
                  "with the camera panning right", "the camera pans right", "panning right"],
    "zoom_in": ["as the camera zooms in", "with the camera zooming in", "zooming in",
                "the camera zooms in", "while the camera zooms in"],
    "zoom_out": ["as the camera zooms out", "with the camera zooming out", "zooming out",
                 "the camera zooms out", "while the camera zooms out"],
}
CAMERA_SENTENCES = {
    "pan_left": ["The camera pans left.", "The camera pans to the left."],
    "pan_right": ["The camera pans right.", "The camera pans to the right."],
    "zoom_in": ["The camera zooms in.", "The camera slowly zooms in."],
    "zoom_out": ["The camera zooms out.", "The camera slowly zooms out."],
}


_PLURAL = {"rises": "rise", "floats": "float", "moves": "move", "goes": "go", "drifts": "drift",
           "falls": "fall", "sinks": "sink", "drops": "drop", "bounces": "bounce",
           "spins": "spin", "rotates": "rotate", "turns": "turn", "grows": "grow",
           "gets": "get", "expands": "expand", "shrinks": "shrink", "contracts": "contract",
           "stands": "stand", "rests": "rest", "sits": "sit", "stays": "stay", "does": "do"}


def plural_verb(verb: str) -> str:
    """'gets smaller' -> 'get smaller', for two subjects."""
    first, _, rest = verb.partition(" ")
    return " ".join(x for x in (_PLURAL.get(first, first), rest) if x)


def camera_keywords() -> dict[str, list[str]]:
    """Every camera phrase the parser accepts (generated: verb x filler x direction)."""
    out: dict[str, list[str]] = {k: [] for k in CAMERA_PHRASES}
    fill = ["", "slowly ", "gently ", "quickly ", "smoothly ", "to the ", "towards the ",
            "slowly to the "]
    for d in ("left", "right"):
        for subj in ("camera ", "the camera ", ""):
            verbs = ["pans", "pan", "panning", "panned", "pans over", "pans across"]
            if subj:
                verbs += ["moves", "move", "moving", "tracks", "tracking", "turns", "turning",
                          "sweeps", "sweeping", "swings", "swinging", "trucks", "trucking"]
            for v in verbs:
                for f in fill:
                    out[f"pan_{d}"].append(f"{subj}{v} {f}{d}")
                    for adv in ("slowly ", "gently ", "quickly ", "smoothly ", "then "):
                        out[f"pan_{d}"].append(f"{subj}{adv}{v} {f}{d}")
    for d in ("in", "out"):
        for subj in ("camera ", "the camera ", ""):
            for v in ("zooms", "zoom", "zooming", "zoomed"):
                for f in ("", "slowly ", "gently ", "quickly ", "smoothly "):
                    out[f"zoom_{d}"].append(f"{subj}{v} {f}{d}")
                    out[f"zoom_{d}"].append(f"{subj}{f}{v} {d}")
        out[f"zoom_{d}"].append(f"zoom {d}")
    out["zoom_in"] += ["camera pushes in", "pushing in", "push in", "dolly in", "dollies in",
                       "camera moves closer", "camera moves in", "closing in"]
    out["zoom_out"] += ["camera pulls back", "pulling back", "pull back", "pulls back",
                        "dolly out", "dollies out", "camera pulls out", "pulling out",
                        "camera moves away", "camera moves out", "zooming away"]
    return out
