"""`make demo`'s spare parts, the data (pure, no I/O): a catalogue of a few hundred parts built from
combinable lists (bearings by size, seal and maker; belts by profile and length; filters, oils, greases,
fuses, contactors, sensors, cables...), with realistic makers' references, prices in MAD centimes, minimum
and maximum stock, and the equipment types each part fits; the storage locations. `demo_inventory` loads
them. Deterministic for a seed: a second run finds the same references and codes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal

from demo_catalog import FAMILIES, _rng

CENTRAL = "MAG-CASA"


@dataclass(frozen=True)
class PartSpec:
    reference: str
    nom: str
    categorie: str
    fabricant: str
    reference_fabricant: str
    unite: str
    prix_unitaire: int  # centimes (MAD)
    stock_minimum: int
    stock_maximum: int
    types_equipement: tuple[str, ...]  # lower-case equipment types, as assets names them
    low: bool  # delivered below its minimum: to reorder

    def body(self) -> dict[str, object]:
        return {
            "reference": self.reference,
            "nom": self.nom,
            "categorie": self.categorie,
            "fabricant": self.fabricant,
            "reference_fabricant": self.reference_fabricant,
            "unite": self.unite,
            "prix_unitaire": self.prix_unitaire,
            "stock_minimum": self.stock_minimum,
            "stock_maximum": self.stock_maximum,
            "types_equipement": list(self.types_equipement),
        }


@dataclass(frozen=True)
class LocationSpec:
    code: str
    nom: str
    type: str
    adresse: str
    technician: int | None = None  # index into the demo's technicians (a van)


# --- the catalogue: (nom, fabricant, reference_fabricant, base price in MAD) per category ------------

_BEARINGS = dict(
    zip(
        [f"62{i:02d}" for i in range(1, 11)] + [f"63{i:02d}" for i in range(1, 11)],
        [
            *("12x32x10", "15x35x11", "17x40x12", "20x47x14", "25x52x15"),
            *("30x62x16", "35x72x17", "40x80x18", "45x85x19", "50x90x20"),
            *("12x37x12", "15x42x13", "17x47x14", "20x52x15", "25x62x17"),
            *("30x72x19", "35x80x21", "40x90x23", "45x100x25", "50x110x27"),
        ],
        strict=True,
    )
)
# Bearing seals as each maker writes them: (short code of the reference, maker's suffix, what it is).
_SEALS = {
    "SKF": (("2RS", "2RSH", "2 joints"), ("ZZ", "2Z", "2 flasques")),
    "FAG": (("2RS", "2RSR", "2 joints"), ("ZZ", "2ZR", "2 flasques")),
}
_LIP_SEALS = ("20x35x7", "25x42x7", "30x47x7", "35x52x7", "40x62x8", "45x62x8", "50x72x8", "60x80x8")
_BELT_LENGTHS = (1250, 1400, 1600, 1800, 2000, 2240)
Row = tuple[str, str, str, str, str, str, float, tuple[str, ...]]


def _table(text: str) -> list[list[str]]:
    """Rows of a `|`-separated table, one a line."""
    return [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines()]


# nom | fabricant | produit | MAD per litre | equipment family keys
_OILS = _table("""
Huile hydraulique HM 46 | Total | Azolla ZS 46 | 38 | presse pont_roulant
Huile hydraulique HM 68 | Total | Azolla ZS 68 | 40 | presse
Huile hydraulique HM 46 | Shell | Tellus S2 MX 46 | 42 | presse pont_roulant
Huile réducteur EP 220 | Total | Carter EP 220 | 46 | convoyeur pont_roulant
Huile réducteur EP 320 | Total | Carter EP 320 | 48 | convoyeur tour_refroidissement
Huile compresseur à vis | Total | Dacnis SH 46 | 95 | compresseur
Huile compresseur synthétique | Mobil | Rarus SHC 1024 | 120 | compresseur
Huile moteur diesel 15W-40 | Total | Rubia TIR 7400 15W-40 | 52 | groupe_electrogene
Huile frigorifique POE | Total | Planetelf ACD 68M | 160 | groupe_froid
Huile isolante pour transformateur | Nynas | Nytro Lyra X | 35 | transformateur
Huile de circulation ISO VG 46 | Mobil | DTE 25 | 44 | pompe presse
""")
# nom | fabricant | produit | MAD per kg
_GREASES = _table("""
Graisse roulements usage général | SKF | LGMT 2 | 190
Graisse haute performance | SKF | LGHP 2 | 320
Graisse extrême pression | SKF | LGWA 2 | 260
Graisse lithium EP 2 | Total | Multis EP 2 | 95
Graisse complexe calcium sulfonate | Total | Ceran XM 220 | 180
Graisse lithium EP 2 | Mobil | Mobilux EP 2 | 110
""")
# kind | fabricant | base MAD | family keys | makers' references
_FILTERS = _table("""
huile | Mann-Filter | 95 | groupe_electrogene compresseur | W 712/75, W 719/30, W 940/25, W 962, W 1374/4, HU 718/5 x
air | Mann-Filter | 160 | compresseur groupe_electrogene | C 1140, C 16 400, C 20 500, C 25 860/2, C 30 1500
hydraulique | HYDAC | 420 | presse pont_roulant | 0060 D 010 BN4HC, 0110 D 010 BN4HC, 0160 D 010 BN4HC, 0240 D 010 BN4HC
gasoil | Fleetguard | 140 | groupe_electrogene | FF5052, FS1280, FF5488
séparateur air/huile | Mann-Filter | 380 | compresseur | LB 962/2, LB 13 145/3, LE 4044
""")
# categorie | nom | fabricant | reference_fabricant | unite | MAD | family keys
_OTHERS = _table("""
Capteurs | Détecteur inductif M12 PNP | Sick | IME12-04BPSZC0K | piece | 420 | automate convoyeur presse
Capteurs | Détecteur inductif M18 PNP | Sick | IME18-08BPSZC0K | piece | 480 | automate convoyeur presse
Capteurs | Détecteur inductif M30 PNP | Sick | IME30-15BPSZC0K | piece | 560 | automate convoyeur
Capteurs | Détecteur inductif M18 | ifm | IG5591 | piece | 510 | automate pont_roulant
Capteurs | Transmetteur de pression 0-10 bar | WIKA | A-10 0-10 bar | piece | 1350 | compresseur pompe
Capteurs | Transmetteur de pression 0-16 bar | WIKA | A-10 0-16 bar | piece | 1350 | compresseur pompe chaudiere
Capteurs | Transmetteur de pression 0-25 bar | Danfoss | MBS 3000 0-25 bar | piece | 1480 | groupe_froid presse
Capteurs | Pressostat basse pression | Danfoss | KP 1 | piece | 690 | groupe_froid
Capteurs | Pressostat haute pression | Danfoss | KP 5 | piece | 720 | groupe_froid compresseur
Capteurs | Pressostat eau / air | Danfoss | KP 35 | piece | 650 | pompe compresseur
Capteurs | Sonde PT100 L 100 mm | JUMO | 902030/10 | piece | 780 | chaudiere groupe_froid transformateur
Capteurs | Sonde PT100 L 250 mm | JUMO | 902030/20 | piece | 890 | chaudiere tour_refroidissement
Capteurs | Thermostat de sécurité chaudière | Danfoss | KPS 79 | piece | 1650 | chaudiere
Capteurs | Capteur de vibration 4-20 mA | ifm | VKV021 | piece | 2900 | moteur pompe compresseur
Capteurs | Détecteur de niveau vibrant | Endress+Hauser | Liquiphant FTL31 | piece | 2400 | pompe tour_refroidissement
Capteurs | Interrupteur de position à levier | Schneider Electric | XCKJ10511 | piece | 460 | pont_roulant convoyeur
Accouplements | Étoile élastique Rotex 19 92 Sh A | KTR | ROTEX 19 92ShA | piece | 85 | pompe moteur
Accouplements | Étoile élastique Rotex 28 92 Sh A | KTR | ROTEX 28 92ShA | piece | 120 | pompe moteur
Accouplements | Étoile élastique Rotex 42 92 Sh A | KTR | ROTEX 42 92ShA | piece | 210 | compresseur convoyeur
Freins | Garniture de frein de levage | Demag | KBA 125 | jeu | 1450 | pont_roulant
Freins | Disque de frein moteur de translation | Demag | KBF 90 | piece | 980 | pont_roulant
Fluides frigorigènes | Fluide frigorigène R404A | Chemours | Freon 404A | kg | 240 | groupe_froid
Fluides frigorigènes | Fluide frigorigène R134a | Honeywell | Solstice 134a | kg | 210 | groupe_froid
Traitement d'eau | Biocide pour circuit de refroidissement | Nalco | Nalco 7330 | litre | 95 | tour_refroidissement
Traitement d'eau | Inhibiteur tartre et corrosion | Nalco | Nalco 3DT187 | litre | 120 | tour_refroidissement chaudiere
Consommables | Gel de silice pour dessiccateur | Merck | Silicagel orange | kg | 160 | transformateur
Consommables | Ruban PTFE 12 mm x 12 m | Loctite | Loctite 55 | rouleau | 65 | pompe compresseur chaudiere
Consommables | Gaine thermorétractable 3:1 Ø12 | 3M | EPS-300 12/4 | rouleau | 140 | automate moteur
Consommables | Frein filet moyen 50 ml | Loctite | Loctite 243 | piece | 190 | moteur pompe convoyeur
Convoyage | Agrafes de jonction de bande R5 | Flexco | R5 Rivet | boite | 780 | convoyeur
Convoyage | Rouleau porteur Ø89 L 600 | Rulmeca | PSV/1-FHD 89N 600 | piece | 260 | convoyeur
Convoyage | Rouleau porteur Ø89 L 750 | Rulmeca | PSV/1-FHD 89N 750 | piece | 290 | convoyeur
Convoyage | Racleur de bande primaire | Flexco | EZP1 | piece | 3400 | convoyeur
Électricité | Batterie de démarrage 12 V 180 Ah | Varta | Promotive 680 011 140 | piece | 2350 | groupe_electrogene
Électricité | Relais temporisé multifonction | Schneider Electric | RE22R2MMW | piece | 640 | automate compresseur
Électricité | Alimentation 24 V DC 5 A | Siemens | 6EP1333-2BA20 | piece | 1750 | automate
Électricité | Module 16 entrées TOR | Siemens | 6ES7521-1BH00-0AB0 | piece | 4200 | automate
Électricité | Parafoudre type 2 3P+N | Schneider Electric | iPRD40r 3P+N | piece | 1900 | transformateur automate
""")
_PREFIX = {"Capteurs": "CPT", "Accouplements": "ACC", "Freins": "FRN", "Fluides frigorigènes": "FRG",
           "Traitement d'eau": "TRE", "Consommables": "CSO", "Convoyage": "CVY", "Électricité": "ELE"}  # fmt: skip
# nom | fabricant | MAD per metre
_CABLES = _table("""
U1000 R2V 3G1,5 | Nexans | 9
U1000 R2V 3G2,5 | Nexans | 14
U1000 R2V 4G4 | Nexans | 26
U1000 R2V 4G6 | Nexans | 38
U1000 R2V 5G10 | Nexans | 78
U1000 R2V 4G16 | Nexans | 110
U1000 R2V 4G25 | Nexans | 170
H07RN-F 3G1,5 | Prysmian | 16
H07RN-F 4G2,5 | Prysmian | 27
H07RN-F 4G6 | Prysmian | 58
Unitronic LiYCY 4x0,75 | Lapp | 21
Unitronic LiYCY 7x0,75 | Lapp | 32
""")
# (reference, rating) of motor protection: TeSys D contactors (A), SIRIUS contactors (A), GV2 breakers and
# LRD relays (setting range, A)
_TESYS = (("09", 9), ("12", 12), ("18", 18), ("25", 25), ("32", 32), ("38", 38), ("40A", 40), ("50A", 50), ("65A", 65))
_SIRIUS = (("3RT2015", 7), ("3RT2016", 9), ("3RT2017", 12), ("3RT2018", 16), ("3RT2024", 12), ("3RT2026", 25))
_GV2 = (
    ("07", "1,6-2,5"),
    ("08", "2,5-4"),
    ("10", "4-6,3"),
    ("14", "6-10"),
    ("16", "9-14"),
    ("20", "13-18"),
    ("22", "20-25"),
)
_LRD = (
    ("08", "2,5-4"),
    ("10", "4-6"),
    ("12", "5,5-8"),
    ("14", "7-10"),
    ("16", "9-13"),
    ("21", "12-18"),
    ("32", "23-32"),
)


def _types(*keys: str) -> tuple[str, ...]:
    """Equipment types as assets names them (the demo's equipment `type` is its family's label), lower case."""
    return tuple(FAMILIES[k].label.lower() for k in keys)


def _row(reference: str, nom: str, categorie: str, maker: str, ref: str, unite: str, mad: float, keys: str) -> Row:
    return (reference, nom, categorie, maker, ref, unite, mad, tuple(keys.split()))


def _slug(text: str) -> str:
    return text.upper().replace(" ", "-").replace("/", "-").replace(",", "")


def _rows() -> Iterator[Row]:
    """Every part of the catalogue: (reference, nom, categorie, fabricant, reference_fabricant, unite,
    base price in MAD, equipment family keys)."""
    for code, dims in _BEARINGS.items():
        for maker, seals in _SEALS.items():
            for short, suffix, what in seals:
                mad = (28 + int(code[2:]) * (9 if code[1] == "2" else 14)) * (1.15 if maker == "SKF" else 1.0)
                nom = f"Roulement à billes {code} {what} ({dims})"
                keys = "moteur pompe convoyeur compresseur groupe_froid"
                yield _row(
                    f"RLT-{code}-{short}-{maker}", nom, "Roulements", maker, f"{code}-{suffix}", "piece", mad, keys
                )
    for n in (8, 10, 12, 14, 16):
        nom, keys = f"Roulement à rotule sur rouleaux 222{n:02d} E", "convoyeur pont_roulant tour_refroidissement"
        yield _row(f"RLT-222{n:02d}-E-SKF", nom, "Roulements", "SKF", f"222{n:02d} E", "piece", 650 + n * 55, keys)
    for n in range(5, 11):
        nom, keys = f"Palier à semelle UCP2{n:02d} (Ø{n * 5} mm)", "convoyeur tour_refroidissement"
        yield _row(f"PAL-UCP2{n:02d}", nom, "Roulements", "NTN-SNR", f"UCP2{n:02d}", "piece", 160 + n * 30, keys)
    for dims in _LIP_SEALS:
        for mat, factor in (("NBR", 1.0), ("FKM", 2.6)):
            mad = (18 + int(dims.split("x")[0]) * 0.6) * factor
            ref, keys = f"JNT-SPI-{dims.replace('x', '-')}-{mat}", "pompe moteur presse convoyeur"
            yield _row(ref, f"Joint à lèvre {dims} {mat}", "Joints", "Corteco", f"BA {dims} {mat}", "piece", mad, keys)
    for d in (20, 25, 30, 35, 40, 45):
        nom, keys = f"Garniture mécanique MG1 Ø{d}", "pompe tour_refroidissement"
        yield _row(f"JNT-GM-MG1-{d}", nom, "Joints", "EagleBurgmann", f"MG1/{d}-G60", "piece", 900 + d * 22, keys)
    nom = "Coffret de joints toriques NBR (382 pièces)"
    yield _row("JNT-TOR-KIT-NBR", nom, "Joints", "Parker", "O-Ring Kit 382", "boite", 690, "presse pompe compresseur")
    for kind, maker, base, keys, refs in _FILTERS:
        for i, ref in enumerate(refs.split(", ")):
            mad = float(base) * (1 + i * 0.18)
            yield _row(f"FLT-{_slug(ref)}", f"Filtre {kind} {ref}", "Filtres", maker, ref, "piece", mad, keys)
    for profile, maker, per_metre in (
        ("SPZ", "Optibelt", 42),
        ("SPA", "Gates", 48),
        ("SPB", "Gates", 66),
        ("XPA", "Gates", 61),
    ):
        for length in _BELT_LENGTHS:
            nom, mad = f"Courroie trapézoïdale {profile} {length} Lw", 35 + per_metre * length / 1000
            keys = "compresseur tour_refroidissement groupe_froid convoyeur"
            yield _row(f"CRT-{profile}-{length}", nom, "Courroies", maker, f"{profile} {length}", "piece", mad, keys)
    for teeth in (1200, 1440, 1600):
        nom, ref = f"Courroie crantée HTD {teeth}-8M largeur 30", f"{teeth}-8MGT-30"
        yield _row(
            f"CRT-HTD-{teeth}-8M-30", nom, "Courroies", "Gates", ref, "piece", 310 + teeth * 0.12, "convoyeur presse"
        )
    for nom, maker, product, mad, keys in _OILS:
        yield _row(
            f"HUI-{_slug(product)}", f"{nom} ({product})", "Lubrifiants", maker, product, "litre", float(mad), keys
        )
    for nom, maker, product, mad in _GREASES:
        ref, keys = f"GRS-{maker[:3].upper()}-{_slug(product)}", "moteur convoyeur pont_roulant pompe"
        yield _row(ref, f"{nom} ({product})", "Lubrifiants", maker, product, "kg", float(mad), keys)
    fuses = (("10X38", "gG", "Schneider Electric", "DF2CA{:02d}", (2, 4, 6, 10, 16, 20, 25, 32), 62),
             ("14X51", "aM", "Legrand", "0133{:02d}", (16, 25, 32, 40, 50), 98))  # fmt: skip
    for size, kind, maker, pattern, ratings, mad in fuses:
        for amps in ratings:
            nom = f"Fusible cylindrique {size.lower()} {kind} {amps} A (boîte de 10)"
            ref, keys = f"FUS-{size}-{kind.upper()}-{amps}A", "automate moteur groupe_froid compresseur"
            yield _row(ref, nom, "Fusibles", maker, pattern.format(amps), "boite", mad, keys)
    for amps in (63, 80, 100, 125, 160):
        nom, keys = f"Fusible à couteaux NH00 gG {amps} A", "transformateur groupe_electrogene"
        yield _row(
            f"FUS-NH00-GG-{amps}A", nom, "Fusibles", "Mersen", f"NH00GG50V{amps}", "piece", 45 + amps * 0.2, keys
        )
    keys = "automate moteur compresseur pont_roulant pompe groupe_froid"
    for size, amps in _TESYS:
        nom, mad = f"Contacteur TeSys D 3P {amps} A bobine 220 V AC", 260 + amps * 14
        yield _row(f"CTR-LC1D{size}M7", nom, "Appareillage", "Schneider Electric", f"LC1D{size}M7", "piece", mad, keys)
    for ref, amps in _SIRIUS:
        nom, mad = f"Contacteur SIRIUS 3P {amps} A bobine 230 V AC", 240 + amps * 15
        yield _row(f"CTR-{ref}-1AP01", nom, "Appareillage", "Siemens", f"{ref}-1AP01", "piece", mad, keys)
    for ref, span in _GV2:
        nom, mad = f"Disjoncteur moteur magnéto-thermique {span} A", 420 + int(ref) * 8
        yield _row(f"DIS-GV2ME{ref}", nom, "Appareillage", "Schneider Electric", f"GV2ME{ref}", "piece", mad, keys)
    for ref, span in _LRD:
        nom, mad = f"Relais de protection thermique {span} A", 310 + int(ref) * 6
        yield _row(f"REL-LRD{ref}", nom, "Appareillage", "Schneider Electric", f"LRD{ref}", "piece", mad, keys)
    for nom, maker, mad in _CABLES:
        keys = "automate moteur transformateur"
        yield _row(f"CAB-{_slug(nom)}", f"Câble {nom}", "Câbles", maker, nom, "metre", float(mad), keys)
    for categorie, nom, maker, ref, unite, mad, keys in _OTHERS:
        yield _row(f"{_PREFIX[categorie]}-{_slug(ref)}", nom, categorie, maker, ref, unite, float(mad), keys)


# The range of the minimum stock by unit (the maximum is 3 to 5 times the minimum).
_LEVELS = {
    "piece": (2, 8),
    "paire": (2, 8),
    "jeu": (1, 4),
    "boite": (2, 6),
    "rouleau": (3, 10),
    "litre": (40, 120),
    "kg": (5, 25),
    "metre": (50, 300),
}


def catalogue(seed: int) -> list[PartSpec]:
    """The whole catalogue, categories interleaved (so that a smaller demo takes a bit of each)."""
    by_category: dict[str, list[PartSpec]] = {}
    for reference, nom, categorie, maker, ref_fab, unite, base, keys in _rows():
        rng = _rng(seed, "piece", reference)
        low_min, high_min = _LEVELS[unite]
        minimum = rng.randint(low_min, high_min)
        part = PartSpec(
            reference=reference,
            nom=nom,
            categorie=categorie,
            fabricant=maker,
            reference_fabricant=ref_fab,
            unite=unite,
            prix_unitaire=round(base * rng.uniform(0.92, 1.08) * 10) * 10,  # centimes, to 10 centimes
            stock_minimum=minimum,
            stock_maximum=minimum * rng.choice((3, 4, 5)),
            types_equipement=_types(*keys),
            low=rng.random() < 0.06,
        )
        by_category.setdefault(categorie, []).append(part)
    lists = list(by_category.values())
    mixed = [lists[j][i] for i in range(max(map(len, lists))) for j in range(len(lists)) if i < len(lists[j])]
    # The first three of every selection are low, so that even a tiny demo has parts to reorder.
    return [replace(p, low=True) if i < 3 else p for i, p in enumerate(mixed)]


def locations(technicians: int) -> list[LocationSpec]:
    """The central store, two site stores, and the vans of the first three technicians."""
    stores = [
        LocationSpec(
            CENTRAL,
            "Magasin central Casablanca",
            "magasin_central",
            "Zone industrielle Sidi Bernoussi, lot 112, Casablanca",
        ),
        LocationSpec(
            "MAG-JORF", "Magasin de site Jorf Lasfar", "magasin_site", "Complexe industriel, Jorf Lasfar, El Jadida"
        ),
        LocationSpec(
            "MAG-TNG", "Magasin de site Tanger Med", "magasin_site", "Zone franche Tanger Automotive City, Tanger"
        ),
    ]
    vans = [
        LocationSpec(
            f"VEH-{i + 1:02d}", f"Véhicule d'intervention n°{i + 1}", "vehicule", "Parc véhicules, Casablanca", i
        )
        for i in range(min(3, technicians))
    ]
    return stores + vans


def parts_plan(seed: int, count: int, technicians: int) -> tuple[list[PartSpec], list[LocationSpec]]:
    return catalogue(seed)[:count], locations(technicians)


def quantity_for(part: PartSpec, rng: random.Random) -> Decimal:
    """A plausible quantity used on one intervention, in the part's unit."""
    if part.unite == "litre":
        return Decimal(rng.choice((2, 5, 10, 20)))
    if part.unite == "kg":
        return Decimal(rng.choice(("0.4", "0.5", "1", "1.5")))
    if part.unite == "metre":
        return Decimal(rng.choice(("2.5", "5", "8", "12.5")))
    return Decimal(rng.choice((1, 1, 1, 2, 2, 4)))
