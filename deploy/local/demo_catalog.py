"""What `make demo` loads: realistic reference data of MIF Maroc's world and a deterministic plan of it.

Pure data and pure functions (no I/O), so the plan for a given seed and set of counts is always the
same: a second run finds the same names and only creates what is missing. Every name is fictional
(no real company, person or serial number), and every e-mail address is under the reserved `.example`
top-level domain, so a suite wired to a real SMTP relay cannot mail anyone.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

STATUTS = ("ouverte", "affectee", "en_cours", "en_attente", "cloturee", "annulee", "archivee")

# --- people and organisations ----------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    first: str
    last: str

    @property
    def full_name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def username(self) -> str:
        """`n.berrada`: the login MIF's staff and clients' users are given."""
        return f"{self.first[0]}.{self.last}".lower().replace(" ", "").replace("-", "")


@dataclass(frozen=True)
class ClientSpec:
    code: str  # three letters, used in equipment tags (CMP-TAC-007)
    nom_entreprise: str
    ville: str
    zone: str  # the technicians' region that serves it
    secteur_activite: str
    adresse: str
    telephone: str
    domain: str
    contact: Person
    niveau_service: str
    type_client: str
    sites: tuple[str, ...]
    families: tuple[str, ...]  # equipment families typical of its trade (drawn more often)
    contract_days_left: int  # the contract runs until this many days from today (one is up for renewal)

    @property
    def type_contrat(self) -> str:
        return CONTRATS[self.niveau_service]

    def contrat(self, today: date) -> tuple[date, date]:
        """(contrat_debut, contrat_fin): relative to today, so the demo's contracts are current."""
        fin = today + timedelta(days=self.contract_days_left)
        years = CONTRACT_YEARS[self.niveau_service]
        return fin - timedelta(days=365 * years), fin

    @property
    def user_email(self) -> str:
        return f"{self.contact.username}@{self.domain}"


CONTRATS = {
    "premium": "Maintenance globale (préventif + correctif), astreinte 24/7, GTI 2 h",
    "standard": "Préventif + correctif en heures ouvrées, GTI 24 h",
    "basique": "Correctif à la demande, tarif horaire",
}

CONTRACT_YEARS = {"premium": 3, "standard": 2, "basique": 1}

CLIENTS: tuple[ClientSpec, ...] = (
    ClientSpec(
        code="TAC",
        nom_entreprise="Tanger Automotive Components",
        ville="Tanger",
        zone="Nord",
        secteur_activite="Automobile (équipementier)",
        adresse="Tanger Automotive City, lot 45, Jouamâa, Tanger",
        telephone="+212 539 39 45 10",
        domain="tac-automotive.example",
        contact=Person("Karim", "Tazi"),
        niveau_service="premium",
        type_client="entreprise",
        sites=("Usine 1 - Emboutissage", "Usine 1 - Ligne peinture", "Usine 2 - Assemblage", "Utilités"),
        families=("presse", "compresseur", "automate", "pont_roulant"),
        contract_days_left=700,
    ),
    ClientSpec(
        code="JFS",
        nom_entreprise="Jorf Fertilisants SA",
        ville="Jorf Lasfar",
        zone="Jorf Lasfar",
        secteur_activite="Chimie (engrais)",
        adresse="Complexe industriel, route côtière El Jadida - Safi, Jorf Lasfar",
        telephone="+212 523 34 60 00",
        domain="jorf-fertilisants.example",
        contact=Person("Meryem", "Alaoui"),
        niveau_service="premium",
        type_client="entreprise",
        sites=("Unité acide sulfurique", "Unité granulation", "Centrale thermique", "Station de pompage eau de mer"),
        families=("pompe", "chaudiere", "transformateur", "moteur"),
        contract_days_left=40,
    ),
    ClientSpec(
        code="CDS",
        nom_entreprise="Cimenterie du Saïss",
        ville="Fès",
        zone="Centre",
        secteur_activite="Matériaux de construction (ciment)",
        adresse="Route d'Imouzzer km 12, Fès",
        telephone="+212 535 65 12 80",
        domain="cimenterie-saiss.example",
        contact=Person("Youssef", "Bennani"),
        niveau_service="premium",
        type_client="entreprise",
        sites=("Carrière et concassage", "Atelier cuisson (four)", "Broyage ciment", "Expédition"),
        families=("convoyeur", "pont_roulant", "moteur", "transformateur"),
        contract_days_left=950,
    ),
    ClientSpec(
        code="CEI",
        nom_entreprise="Casablanca Emballages Industriels",
        ville="Casablanca",
        zone="Casablanca",
        secteur_activite="Emballage et plasturgie",
        adresse="Zone industrielle Ain Sebaâ, rue 7, Casablanca",
        telephone="+212 522 35 78 40",
        domain="casa-emballages.example",
        contact=Person("Salma", "Cherkaoui"),
        niveau_service="standard",
        type_client="entreprise",
        sites=("Atelier extrusion", "Atelier impression", "Magasin matières", "Utilités"),
        families=("compresseur", "groupe_froid", "automate", "convoyeur"),
        contract_days_left=400,
    ),
    ClientSpec(
        code="SRG",
        nom_entreprise="Sucrerie Raffinerie du Gharb",
        ville="Kénitra",
        zone="Nord",
        secteur_activite="Agroalimentaire (sucre)",
        adresse="Route de Sidi Yahia, zone industrielle, Kénitra",
        telephone="+212 537 37 21 90",
        domain="sucrerie-gharb.example",
        contact=Person("Abdelilah", "Ouazzani"),
        niveau_service="standard",
        type_client="entreprise",
        sites=("Diffusion", "Évaporation", "Cristallisation", "Chaufferie"),
        families=("chaudiere", "pompe", "convoyeur", "tour_refroidissement"),
        contract_days_left=520,
    ),
    ClientSpec(
        code="AFL",
        nom_entreprise="Atlas Froid Logistique",
        ville="Agadir",
        zone="Souss",
        secteur_activite="Logistique frigorifique",
        adresse="Parc industriel Tassila, Agadir",
        telephone="+212 528 83 40 12",
        domain="atlas-froid.example",
        contact=Person("Hassan", "Amzil"),
        niveau_service="standard",
        type_client="entreprise",
        sites=("Entrepôt négatif -25 °C", "Entrepôt positif +4 °C", "Quai d'expédition", "Salle des machines"),
        families=("groupe_froid", "tour_refroidissement", "groupe_electrogene", "compresseur"),
        contract_days_left=230,
    ),
    ClientSpec(
        code="HDM",
        nom_entreprise="Huilerie de Mohammedia",
        ville="Mohammedia",
        zone="Casablanca",
        secteur_activite="Agroalimentaire (huiles)",
        adresse="Zone industrielle Sud-Ouest, Mohammedia",
        telephone="+212 523 32 18 55",
        domain="huilerie-mohammedia.example",
        contact=Person("Nawal", "Kettani"),
        niveau_service="basique",
        type_client="entreprise",
        sites=("Trituration", "Raffinage", "Conditionnement", "Chaufferie"),
        families=("pompe", "chaudiere", "convoyeur", "compresseur"),
        contract_days_left=300,
    ),
    ClientSpec(
        code="REH",
        nom_entreprise="Régie des Eaux du Haouz",
        ville="Marrakech",
        zone="Centre",
        secteur_activite="Distribution d'eau et assainissement",
        adresse="Avenue Mohammed VI, Marrakech",
        telephone="+212 524 42 30 00",
        domain="eaux-haouz.example",
        contact=Person("Rachid", "Lahlou"),
        niveau_service="standard",
        type_client="collectivite",
        sites=("Station de pompage Tensift", "Station d'épuration", "Réservoir Agdal", "Poste HTA Menara"),
        families=("pompe", "groupe_electrogene", "transformateur", "automate"),
        contract_days_left=610,
    ),
    ClientSpec(
        code="KAS",
        nom_entreprise="Kénitra Aéro Structures",
        ville="Kénitra",
        zone="Nord",
        secteur_activite="Aéronautique (structures)",
        adresse="Atlantic Free Zone, Ameur Seflia, Kénitra",
        telephone="+212 537 40 22 70",
        domain="kenitra-aero.example",
        contact=Person("Imane", "Sqalli"),
        niveau_service="premium",
        type_client="entreprise",
        sites=("Hall usinage", "Hall traitement de surface", "Hall assemblage", "Utilités"),
        families=("compresseur", "automate", "pont_roulant", "presse"),
        contract_days_left=820,
    ),
    ClientSpec(
        code="COA",
        nom_entreprise="Conserverie Océane d'Agadir",
        ville="Agadir",
        zone="Souss",
        secteur_activite="Agroalimentaire (conserves de poisson)",
        adresse="Quartier industriel Anza, Agadir",
        telephone="+212 528 82 15 60",
        domain="conserverie-oceane.example",
        contact=Person("Fatima Zahra", "Ait Lahcen"),
        niveau_service="basique",
        type_client="entreprise",
        sites=("Salle de réception", "Ligne de cuisson", "Sertissage", "Autoclaves"),
        families=("chaudiere", "groupe_froid", "convoyeur", "pompe"),
        contract_days_left=150,
    ),
)

MIF_DOMAIN = "mif-maroc.example"

MANAGERS: tuple[Person, ...] = (
    Person("Nadia", "Berrada"),
    Person("Omar", "El Fassi"),
    Person("Samira", "Idrissi"),
    Person("Hicham", "Benjelloun"),
    Person("Leila", "Chraibi"),
    Person("Mehdi", "Sebti"),
)

TECHNICIANS: tuple[Person, ...] = (
    Person("Youssef", "Amrani"),
    Person("Mohamed", "Bouzidi"),
    Person("Ayoub", "Essaidi"),
    Person("Khalid", "Naciri"),
    Person("Soufiane", "Ouali"),
    Person("Hamza", "Bakkali"),
    Person("Zakaria", "El Idrissi"),
    Person("Anas", "Fikri"),
    Person("Brahim", "Oubella"),
    Person("Mustapha", "Rami"),
    Person("Reda", "Tahiri"),
    Person("Ilyas", "Ghazi"),
    Person("Said", "Moujahid"),
    Person("Amine", "Zerouali"),
    Person("Nabil", "Hajji"),
    Person("Driss", "Belhaj"),
    Person("Othmane", "Kabbaj"),
    Person("Yassine", "Lamrani"),
    Person("Jamal", "Ait Ouarab"),
    Person("Tarik", "Mansouri"),
    Person("Adil", "Chafik"),
    Person("Hajar", "Benkirane"),
    Person("Walid", "Saadi"),
    Person("Karima", "Filali"),
)

# Technicians' regions: where they live and which clients they serve first.
ZONES = ("Casablanca", "Nord", "Centre", "Souss", "Jorf Lasfar")


@dataclass(frozen=True)
class Competence:
    nom: str
    domaine: str
    description: str


COMPETENCES: tuple[Competence, ...] = (
    Competence("Électricité industrielle", "électricité", "Armoires BT, moteurs, variateurs, consignations."),
    Competence(
        "Haute et moyenne tension", "électricité", "Postes HTA/BT, transformateurs, cellules (habilitation H2)."
    ),
    Competence("Mécanique industrielle", "mécanique", "Roulements, alignement, transmissions, réducteurs."),
    Competence("Hydraulique", "mécanique des fluides", "Centrales, vérins, pompes, distributeurs proportionnels."),
    Competence("Pneumatique", "mécanique des fluides", "Air comprimé, traitement d'air, réseaux."),
    Competence("Froid industriel", "thermique", "Groupes froids, fluides frigorigènes (attestation de capacité)."),
    Competence("Chaudronnerie et soudure", "mécanique", "Soudure TIG/ARC, tuyauterie, appareils à pression."),
    Competence("Automatisme et API", "automatisme", "Siemens S7, Schneider Modicon, réseaux Profinet/Modbus."),
    Competence("Instrumentation et régulation", "automatisme", "Capteurs, boucles de régulation, étalonnage."),
    Competence("Levage et manutention", "mécanique", "Ponts roulants, palans, VGP."),
    Competence("Analyse vibratoire", "diagnostic", "Mesures, spectres, équilibrage (certification ISO 18436 N2)."),
)

# Teams: a specialty and its competences (the first one at the technician's best level).
TEAMS: dict[str, tuple[str, ...]] = {
    "Électrotechnique": ("Électricité industrielle", "Haute et moyenne tension", "Automatisme et API"),
    "Mécanique et hydraulique": ("Mécanique industrielle", "Hydraulique", "Pneumatique", "Analyse vibratoire"),
    "Froid et thermique": ("Froid industriel", "Chaudronnerie et soudure", "Instrumentation et régulation"),
    "Automatisme et instrumentation": (
        "Automatisme et API",
        "Instrumentation et régulation",
        "Électricité industrielle",
    ),
    "Levage et structures": ("Levage et manutention", "Chaudronnerie et soudure", "Mécanique industrielle"),
}
LEVELS = ("expert", "avance", "intermediaire", "debutant")

# --- equipment -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A kind of equipment, with what maintaining it looks like."""

    key: str
    code: str
    label: str
    models: tuple[tuple[str, str], ...]  # (marque, modele)
    zones: tuple[str, ...]
    competences: tuple[str, ...]
    criticite: tuple[int, int, int, int]  # weights of critique, important, standard, non_critique
    frequence_entretien: int  # days
    plan_frequences: tuple[str, ...]
    pannes: tuple[tuple[str, str], ...]  # (symptom, what the technician did about it)
    preventif: tuple[str, ...]
    amelioration: tuple[str, ...]
    diagnostic: tuple[str, ...]


FAMILIES: dict[str, Family] = {
    f.key: f
    for f in (
        Family(
            key="compresseur",
            code="CMP",
            label="Compresseur d'air à vis",
            models=(
                ("Atlas Copco", "GA 37 VSD+"),
                ("Atlas Copco", "GA 75"),
                ("Kaeser", "ASD 40"),
                ("Kaeser", "CSD 105"),
                ("Ingersoll Rand", "R55i"),
                ("Boge", "S 61-3"),
            ),
            zones=("local compresseurs", "salle des utilités"),
            competences=("Mécanique industrielle", "Pneumatique", "Électricité industrielle"),
            criticite=(2, 4, 3, 1),
            frequence_entretien=90,
            plan_frequences=("mensuel", "trimestriel"),
            pannes=(
                (
                    "Température de refoulement élevée, arrêt sécurité",
                    "Radiateur huile/air nettoyé, thermostat contrôlé. Essai en charge 2 h : refoulement à 82 °C.",
                ),
                (
                    "Fuite d'huile au séparateur",
                    "Séparateur huile/air et joints remplacés, 20 L d'huile neuve. Plus de fuite après 1 h en charge.",
                ),
                (
                    "Pression réseau insuffisante en production",
                    "Trois fuites réseau colmatées, consigne remise à 7,5 bar. Pression stable en production.",
                ),
                (
                    "Défaut variateur de vitesse (F0312)",
                    "Carte de commande du variateur remplacée, paramètres restaurés. Fonctionnement nominal.",
                ),
                (
                    "Purgeur de condensats bloqué",
                    "Purgeur électronique remplacé, réseau purgé. Plus de condensats en aval du sécheur.",
                ),
                (
                    "Bruit anormal au démarrage",
                    "Accouplement élastique usé remplacé, alignement contrôlé. Démarrage silencieux.",
                ),
            ),
            preventif=(
                "Remplacement filtre à air et filtre à huile",
                "Vidange et contrôle du séparateur huile/air",
                "Contrôle courroies, alignement et graissage moteur",
            ),
            amelioration=("Installation d'un sécheur par adsorption", "Récupération de chaleur sur le circuit d'huile"),
            diagnostic=("Recherche de fuites réseau air comprimé (ultrasons)", "Analyse d'huile et bilan énergétique"),
        ),
        Family(
            key="pompe",
            code="PMP",
            label="Pompe centrifuge",
            models=(
                ("Grundfos", "CR 64-3"),
                ("Grundfos", "NB 80-250"),
                ("KSB", "Etanorm 100-250"),
                ("Flowserve", "Durco Mark 3"),
                ("Wilo", "Helix V 3605"),
            ),
            zones=("station de pompage", "circuit de refroidissement", "salle des pompes"),
            competences=("Hydraulique", "Mécanique industrielle", "Analyse vibratoire"),
            criticite=(3, 4, 2, 1),
            frequence_entretien=180,
            plan_frequences=("trimestriel", "semestriel"),
            pannes=(
                (
                    "Fuite à la garniture mécanique",
                    "Garniture mécanique remplacée (kit d'origine), joint de corps changé. Pas de fuite après 1 h.",
                ),
                (
                    "Vibrations excessives palier côté accouplement",
                    "Roulements 6309 C3 remplacés côté accouplement, alignement laser refait : 1,8 mm/s.",
                ),
                (
                    "Débit insuffisant",
                    "Roue usée remplacée, jeux d'étanchéité refaits. Débit nominal retrouvé (62 m³/h).",
                ),
                (
                    "Cavitation à l'aspiration",
                    "Crépine d'aspiration débouchée, vanne d'aspiration réouverte en grand. NPSH rétabli.",
                ),
                (
                    "Échauffement du moteur de la pompe",
                    "Ventilateur du moteur cassé remplacé, intensité contrôlée à 38 A (nominal 41 A).",
                ),
            ),
            preventif=("Contrôle garniture et graissage des paliers", "Contrôle d'alignement laser pompe-moteur"),
            amelioration=(
                "Remplacement par une pompe à haut rendement IE4",
                "Ajout d'un capteur de vibrations connecté",
            ),
            diagnostic=("Mesure vibratoire et analyse spectrale", "Relevé de courbe débit/pression"),
        ),
        Family(
            key="groupe_electrogene",
            code="GEN",
            label="Groupe électrogène",
            models=(
                ("Caterpillar", "C18 - 600 kVA"),
                ("Cummins", "C500 D5"),
                ("SDMO", "J165K"),
                ("Perkins", "2506C-E15"),
            ),
            zones=("local groupe électrogène", "poste de secours"),
            competences=("Électricité industrielle", "Mécanique industrielle"),
            criticite=(5, 3, 1, 0),
            frequence_entretien=180,
            plan_frequences=("mensuel", "semestriel"),
            pannes=(
                (
                    "Non-démarrage lors de l'essai mensuel",
                    "Démarreur remplacé, essai de démarrage concluant (4 s), essai en charge 30 min.",
                ),
                (
                    "Batterie de démarrage hors service",
                    "Batteries remplacées (2 x 12 V 180 Ah), chargeur contrôlé. Démarrage en 4 s.",
                ),
                (
                    "Alarme température du liquide de refroidissement",
                    "Thermostat remplacé, circuit purgé. Essai en charge 45 min à 75 % sans alarme.",
                ),
                (
                    "Défaut de l'inverseur de sources",
                    "Contacteur de l'inverseur remplacé, bascule réseau/groupe testée trois fois.",
                ),
            ),
            preventif=(
                "Essai en charge 30 minutes",
                "Vidange moteur et remplacement des filtres",
                "Contrôle niveau gasoil, antigel et courroies",
            ),
            amelioration=("Télésurveillance du groupe (GSM)",),
            diagnostic=("Test de l'inverseur de sources en coupure réelle", "Analyse du gasoil (contamination)"),
        ),
        Family(
            key="chaudiere",
            code="CHD",
            label="Chaudière vapeur",
            models=(
                ("Babcock Wanson", "BWD 40"),
                ("Viessmann", "Vitomax 200-HS"),
                ("Bosch", "UL-S 5000"),
                ("Loos", "UT-H 8000"),
            ),
            zones=("chaufferie",),
            competences=("Chaudronnerie et soudure", "Instrumentation et régulation", "Électricité industrielle"),
            criticite=(6, 3, 1, 0),
            frequence_entretien=90,
            plan_frequences=("mensuel", "trimestriel", "annuel"),
            pannes=(
                (
                    "Mise en sécurité du brûleur",
                    "Électrode d'ionisation et cellule UV remplacées, brûleur réglé : CO 12 ppm, O2 3,1 %.",
                ),
                (
                    "Fuite sur un tube de fumée",
                    "Tube de fumée obturé provisoirement, remplacement planifié à l'arrêt technique.",
                ),
                (
                    "Défaut de régulation du niveau d'eau",
                    "Sonde de niveau nettoyée et recalibrée, essais de sécurité niveau bas conformes.",
                ),
                (
                    "Pression vapeur instable",
                    "Vanne de régulation du brûleur reparamétrée (PID), pression stable à 10 bar ± 0,2.",
                ),
            ),
            preventif=("Ramonage et contrôle du brûleur", "Contrôle des soupapes de sûreté", "Analyse de combustion"),
            amelioration=("Installation d'un économiseur sur les fumées",),
            diagnostic=("Contrôle d'épaisseur des tubes (ultrasons)", "Analyse de l'eau d'alimentation"),
        ),
        Family(
            key="convoyeur",
            code="CNV",
            label="Convoyeur à bande",
            models=(
                ("Interroll", "RollerDrive EC5000"),
                ("FlexLink", "X85"),
                ("Continental", "Conti EP 630"),
                ("Bühler", "Transporteur à bande TBE"),
            ),
            zones=("ligne de production", "zone de stockage", "quai d'expédition"),
            competences=("Mécanique industrielle", "Électricité industrielle"),
            criticite=(1, 3, 5, 2),
            frequence_entretien=30,
            plan_frequences=("hebdomadaire", "mensuel"),
            pannes=(
                (
                    "Déport de bande",
                    "Bande recentrée, rouleaux de guidage réglés, tension ajustée. Marche à vide puis en charge OK.",
                ),
                (
                    "Rouleau porteur bloqué",
                    "Trois rouleaux porteurs remplacés, station nettoyée. Rotation libre contrôlée.",
                ),
                (
                    "Rupture de la jonction de bande",
                    "Jonction vulcanisée à chaud refaite sur 1 200 mm, temps de séchage respecté.",
                ),
                (
                    "Défaut motoréducteur (surcharge)",
                    "Motoréducteur remplacé par l'unité de réserve, ancien envoyé en révision.",
                ),
            ),
            preventif=("Contrôle tension et alignement de bande", "Graissage des paliers et contrôle des racleurs"),
            amelioration=("Ajout de détecteurs de déport de bande",),
            diagnostic=("Thermographie des motoréducteurs",),
        ),
        Family(
            key="transformateur",
            code="TRF",
            label="Transformateur HTA/BT",
            models=(
                ("Schneider Electric", "Trihal 1250 kVA"),
                ("ABB", "RESIBLOC 630 kVA"),
                ("Siemens", "GEAFOL 1600 kVA"),
                ("France Transfo", "Minera 2000 kVA"),
            ),
            zones=("poste de livraison HTA", "poste de transformation"),
            competences=("Haute et moyenne tension", "Électricité industrielle"),
            criticite=(7, 2, 1, 0),
            frequence_entretien=365,
            plan_frequences=("semestriel", "annuel"),
            pannes=(
                (
                    "Alarme température enroulement",
                    "Ventilation forcée remise en service (contacteur remplacé), température stabilisée à 85 °C.",
                ),
                (
                    "Déclenchement de la protection DGPT2",
                    "Relais DGPT2 contrôlé, niveau d'huile complété, isolement conforme. Remise sous tension.",
                ),
                (
                    "Bruit anormal (vibrations du circuit magnétique)",
                    "Serrage du circuit magnétique et des plots antivibratoires repris. Niveau sonore normal.",
                ),
            ),
            preventif=(
                "Thermographie infrarouge des connexions",
                "Analyse d'huile diélectrique",
                "Dépoussiérage et resserrage des connexions",
            ),
            amelioration=("Ajout d'une surveillance de température communicante",),
            diagnostic=("Mesure d'isolement et de rapport de transformation",),
        ),
        Family(
            key="pont_roulant",
            code="PRL",
            label="Pont roulant",
            models=(
                ("Demag", "EKKE 10 t"),
                ("ABUS", "ZLK 16 t"),
                ("Konecranes", "CXT 5 t"),
                ("Verlinde", "Eurobloc VT 3,2 t"),
            ),
            zones=("hall de production", "atelier maintenance", "halle de stockage"),
            competences=("Levage et manutention", "Électricité industrielle", "Mécanique industrielle"),
            criticite=(2, 4, 3, 1),
            frequence_entretien=180,
            plan_frequences=("trimestriel", "semestriel"),
            pannes=(
                (
                    "Frein de levage usé",
                    "Garnitures de frein remplacées, entrefer réglé, essai en charge à 110 % conforme.",
                ),
                (
                    "Fin de course haut défaillant",
                    "Fin de course à cames remplacé et réglé, essais de sécurité conformes.",
                ),
                (
                    "Défaut de la radiocommande",
                    "Émetteur de la radiocommande remplacé et appairé, arrêt d'urgence testé.",
                ),
                (
                    "Câble de levage détoronné",
                    "Câble de levage remplacé (18 mm, 6x36), crochet contrôlé. Consignation levée.",
                ),
            ),
            preventif=("Vérification générale périodique (VGP)", "Contrôle du câble, du crochet et des freins"),
            amelioration=("Installation d'un variateur sur la translation",),
            diagnostic=("Contrôle de la géométrie du chemin de roulement",),
        ),
        Family(
            key="groupe_froid",
            code="GFR",
            label="Groupe froid industriel",
            models=(
                ("Carrier", "AquaForce 30XW"),
                ("Trane", "RTAF 250"),
                ("Daikin", "EWAD-TZ"),
                ("Bitzer", "CSH 7573"),
            ),
            zones=("salle des machines froid", "toiture", "chambre froide"),
            competences=("Froid industriel", "Électricité industrielle"),
            criticite=(4, 4, 2, 0),
            frequence_entretien=90,
            plan_frequences=("mensuel", "trimestriel"),
            pannes=(
                (
                    "Haute pression au condenseur",
                    "Condenseur nettoyé (mousse alcaline), ventilateur 2 remplacé. HP revenue à 14 bar.",
                ),
                (
                    "Fuite de fluide frigorigène R134a",
                    "Fuite sur un raccord flare, brasure refaite, tirage au vide et recharge de 4,5 kg de R134a.",
                ),
                ("Givrage de l'évaporateur", "Cycle de dégivrage reparamétré, sonde de fin de dégivrage remplacée."),
                (
                    "Compresseur en défaut thermique",
                    "Contacteur et relais thermique du compresseur remplacés, intensités équilibrées.",
                ),
            ),
            preventif=(
                "Contrôle d'étanchéité réglementaire",
                "Nettoyage des condenseurs",
                "Contrôle des consignes et alarmes",
            ),
            amelioration=("Remplacement du détendeur par un détendeur électronique",),
            diagnostic=("Bilan frigorifique et relevé des pressions",),
        ),
        Family(
            key="automate",
            code="API",
            label="Armoire automate",
            models=(
                ("Siemens", "S7-1500"),
                ("Schneider Electric", "Modicon M580"),
                ("Allen-Bradley", "ControlLogix 5580"),
                ("Omron", "NX1P2"),
            ),
            zones=("local électrique", "pupitre de ligne"),
            competences=("Automatisme et API", "Instrumentation et régulation", "Électricité industrielle"),
            criticite=(3, 4, 3, 0),
            frequence_entretien=365,
            plan_frequences=("semestriel", "annuel"),
            pannes=(
                (
                    "Perte de communication Profinet",
                    "Switch du réseau ligne remplacé, topologie revérifiée, plus aucune perte de trame.",
                ),
                (
                    "Carte d'entrées défectueuse",
                    "Carte 16 entrées remplacée, affectations vérifiées avec la production.",
                ),
                ("Défaut alimentation 24 V", "Alimentation 24 V remplacée, redondance ajoutée."),
                (
                    "Arrêt ligne sur défaut programme",
                    "Défaut de temporisation corrigé dans le programme (FB 112), version sauvegardée et documentée.",
                ),
            ),
            preventif=("Sauvegarde du programme et contrôle des piles", "Dépoussiérage et resserrage des borniers"),
            amelioration=(
                "Migration de la supervision vers un poste durci",
                "Ajout d'un switch managé sur le réseau ligne",
            ),
            diagnostic=("Analyse du réseau Profinet (diagnostic topologie)",),
        ),
        Family(
            key="presse",
            code="PRS",
            label="Presse hydraulique",
            models=(
                ("Schuler", "MSP 400"),
                ("Fagor Arrasate", "PH 250"),
                ("Loire Safe", "FV 160"),
                ("Dieffenbacher", "DYS 630"),
            ),
            zones=("ligne de presses", "atelier emboutissage"),
            competences=("Hydraulique", "Automatisme et API", "Mécanique industrielle"),
            criticite=(4, 4, 2, 0),
            frequence_entretien=90,
            plan_frequences=("mensuel", "trimestriel"),
            pannes=(
                (
                    "Fuite sur le vérin principal",
                    "Kit de joints du vérin principal remplacé, essais à pression nominale 250 bar sans fuite.",
                ),
                (
                    "Perte de pression hydraulique",
                    "Limiteur de pression défectueux remplacé, pression de travail réglée à 250 bar.",
                ),
                (
                    "Défaut barrière immatérielle",
                    "Barrière immatérielle réalignée et testée, temps d'arrêt mesuré 180 ms (conforme).",
                ),
                ("Surchauffe de l'huile hydraulique", "Échangeur détartré, température d'huile stabilisée à 48 °C."),
            ),
            preventif=(
                "Analyse d'huile et remplacement des filtres",
                "Contrôle des sécurités (barrières, commande bimanuelle)",
            ),
            amelioration=("Ajout d'un échangeur huile/eau",),
            diagnostic=("Mesure des temps d'arrêt (sécurité)",),
        ),
        Family(
            key="moteur",
            code="MOT",
            label="Moteur électrique et variateur",
            models=(
                ("ABB", "M3BP 315 + ACS880"),
                ("Leroy-Somer", "LSES 280 + Powerdrive"),
                ("Siemens", "1LE1 + G120"),
                ("WEG", "W22 IE3"),
            ),
            zones=("ligne de production", "broyeur", "ventilation"),
            competences=("Électricité industrielle", "Mécanique industrielle", "Analyse vibratoire"),
            criticite=(2, 4, 3, 1),
            frequence_entretien=180,
            plan_frequences=("trimestriel", "semestriel"),
            pannes=(
                (
                    "Défaut surintensité du variateur",
                    "Rampe d'accélération allongée, plus de surintensité au démarrage.",
                ),
                ("Roulement moteur bruyant", "Roulements 6316 remplacés, isolement 850 MΩ, vibrations 1,2 mm/s."),
                ("Isolement moteur faible", "Moteur étuvé et vernis refait, isolement rétabli à 500 MΩ."),
            ),
            preventif=("Graissage des roulements et mesure d'isolement",),
            amelioration=("Remplacement par un moteur IE4",),
            diagnostic=("Analyse vibratoire et thermographie",),
        ),
        Family(
            key="tour_refroidissement",
            code="TAR",
            label="Tour aéroréfrigérante",
            models=(("Baltimore Aircoil", "Series 3000"), ("EVAPCO", "AT 19-"), ("Jacir", "Bac 1200")),
            zones=("toiture", "zone utilités"),
            competences=("Froid industriel", "Mécanique industrielle"),
            criticite=(2, 3, 4, 1),
            frequence_entretien=30,
            plan_frequences=("mensuel",),
            pannes=(
                ("Ventilateur en défaut", "Moteur du ventilateur remplacé, courroies neuves, intensité nominale."),
                ("Encrassement du garnissage", "Garnissage nettoyé, bac vidangé et désinfecté."),
                (
                    "Analyse légionelle hors seuil",
                    "Choc biocide réalisé, circuit désinfecté, analyse de contrôle programmée sous 15 jours.",
                ),
            ),
            preventif=("Nettoyage et désinfection (prévention légionelle)", "Contrôle du traitement d'eau"),
            amelioration=("Installation d'un variateur sur le ventilateur",),
            diagnostic=("Prélèvement légionelle et analyse",),
        ),
    )
}

PAUSE_REASONS = (
    "Attente pièce de rechange : commande passée au fournisseur, livraison sous 48 h.",
    "Arrêt de production non planifié du client : accès à l'équipement refusé.",
    "Attente de la consignation électrique par le client.",
    "Pièce à usiner en atelier, reprise prévue après réception.",
    "Attente de l'accord du client sur le devis complémentaire.",
    "Conditions météo (vent fort) : travaux en hauteur suspendus.",
)
CANCEL_REASONS = (
    "Demande en double d'une intervention déjà ouverte.",
    "Le client a résolu le problème en interne.",
    "Équipement remplacé dans le cadre d'un projet client.",
    "Intervention reportée au prochain arrêt technique (nouvelle demande à créer).",
    "Hors périmètre du contrat : devis transmis au client.",
)
COMMENTS = (
    "Client informé par téléphone du délai d'intervention.",
    "Pièce commandée chez le fournisseur, livraison prévue jeudi.",
    "Photos avant/après ajoutées au dossier.",
    "Accès au site validé avec le service HSE du client (permis de travail n° {n}).",
    "Prévoir une nacelle pour la prochaine visite.",
    "Le chef d'équipe de production confirme que la ligne peut être arrêtée de 14 h à 16 h.",
    "Point fait avec le responsable maintenance du client : RAS.",
    "Consommables prélevés au magasin (bon de sortie n° {n}).",
)
UNASSIGN_REASONS = (
    "Technicien réaffecté à une urgence sur un autre site.",
    "Compétence habilitation H2 requise : à réaffecter.",
)
DESCRIPTION_SOURCES = (
    "Signalé par l'opérateur de l'équipe {shift}.",
    "Alarme remontée par la supervision à {hour} h.",
    "Constaté lors de la ronde de l'équipe {shift}.",
    "Demande du responsable maintenance du client.",
)

# --- the plan --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    managers: int = 3
    clients: int = 8
    technicians: int = 20
    equipment: int = 200
    plans_share: float = 0.6  # share of equipment under a preventive plan
    interventions: int = 3000
    pieces: int = 300  # spare parts of the catalogue (demo_parts; at most its size)

    def scaled(self, factor: float) -> Counts:
        """The default data set times `factor`, with the minimum a coherent demo needs."""
        return Counts(
            managers=max(1, round(self.managers * factor)),
            clients=max(2, round(self.clients * factor)),
            technicians=max(2, round(self.technicians * factor)),
            equipment=max(4, round(self.equipment * factor)),
            plans_share=self.plans_share,
            interventions=max(len(STATUTS), round(self.interventions * factor)),
            pieces=max(20, round(self.pieces * factor)),
        )


@dataclass(frozen=True)
class TechnicianSpec:
    person: Person
    equipe: str
    zone: str
    competences: tuple[tuple[str, str], ...]  # (competence nom, niveau)

    @property
    def email(self) -> str:
        return f"{self.person.username}@{MIF_DOMAIN}"


@dataclass(frozen=True)
class EquipementSpec:
    index: int
    nom: str
    family: Family
    client: ClientSpec
    marque: str
    modele: str
    numero_serie: str
    localisation: str
    criticite: str
    date_mise_en_service: date
    date_fin_garantie: date

    def body(self, client_id: int) -> dict[str, object]:
        return {
            "nom": self.nom,
            "type": self.family.label,
            "localisation": self.localisation,
            "numero_serie": self.numero_serie,
            "marque": self.marque,
            "modele": self.modele,
            "criticite": self.criticite,
            "client_id": client_id,
            "frequence_entretien": self.family.frequence_entretien,
            "date_mise_en_service": self.date_mise_en_service.isoformat(),
            "date_fin_garantie": self.date_fin_garantie.isoformat(),
        }


@dataclass(frozen=True)
class PlanSpec:
    equipement: EquipementSpec
    frequence: str
    days_ahead: int  # first due date: this many days from today (never in the past: no backlog at load)
    technician: int | None  # index into the plan's technicians: the default assignee
    statut: str
    commentaire: str


@dataclass(frozen=True)
class Step:
    """One call of an intervention's life: `action` by `actor` ("manager" or "technician")."""

    action: str  # create, affecter, desaffecter, demarrer, suspendre, reprendre, cloturer, annuler, archiver, commenter
    actor: str  # "manager" or "technician" (the one assigned at that moment)
    body: Mapping[str, object] = field(default_factory=dict)
    technician: int | None = None  # affecter / create: who is assigned (index into the technicians)


@dataclass(frozen=True)
class Scenario:
    index: int
    statut: str  # where the steps lead
    equipement: EquipementSpec
    creation: dict[str, object]  # the body, without equipement_id / technicien_id (ids known at run time)
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class DemoPlan:
    counts: Counts
    seed: int
    managers: tuple[Person, ...]
    clients: tuple[ClientSpec, ...]
    technicians: tuple[TechnicianSpec, ...]
    equipment: tuple[EquipementSpec, ...]
    troubled: tuple[EquipementSpec, ...]  # where the open interventions are
    plans: tuple[PlanSpec, ...]

    def scenario(self, index: int) -> Scenario:
        """The life of intervention `index` (deterministic: depends only on the seed and the index)."""
        return build_scenario(self, index)


def _rng(seed: int, *parts: object) -> random.Random:
    # String seeds are hashed with SHA-512 by `random`: stable across runs and Python processes.
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def build_plan(counts: Counts, seed: int) -> DemoPlan:
    """The whole data set but the interventions (built one by one, see `build_scenario`)."""
    check_counts(counts)
    clients = CLIENTS[: counts.clients]
    technicians = tuple(_technician(seed, i, clients) for i in range(counts.technicians))
    equipment = tuple(_equipement(seed, i, clients) for i in range(counts.equipment))
    troubled = tuple(e for e in equipment if _rng(seed, "troubled", e.index).random() < 0.3) or equipment[:1]
    plans = tuple(p for e in equipment if (p := _plan(seed, e, counts)) is not None)
    return DemoPlan(counts, seed, MANAGERS[: counts.managers], clients, technicians, equipment, troubled, plans)


def check_counts(counts: Counts) -> None:
    limits = {"managers": len(MANAGERS), "clients": len(CLIENTS), "technicians": len(TECHNICIANS)}
    for name, limit in limits.items():
        value = getattr(counts, name)
        if not 1 <= value <= limit:
            raise ValueError(f"{name} must be between 1 and {limit} (the catalogue's size), not {value}")
    if counts.equipment < 1 or counts.interventions < 0 or counts.pieces < 0:
        raise ValueError("equipment must be at least 1, interventions and pieces at least 0")


def _technician(seed: int, index: int, clients: tuple[ClientSpec, ...]) -> TechnicianSpec:
    rng = _rng(seed, "technicien", index)
    zones = sorted({c.zone for c in clients})
    # Round-robin over the zones the clients are in, so every client has technicians nearby.
    zone = zones[index % len(zones)]
    # Each round over the zones shifts the teams by one, so every region gets a mix of specialties.
    equipe = list(TEAMS)[(index + index // len(zones)) % len(TEAMS)]
    names = TEAMS[equipe]
    competences = [(names[0], rng.choice(LEVELS[:2]))]
    competences += [(n, rng.choice(LEVELS[1:])) for n in rng.sample(names[1:], k=min(2, len(names) - 1))]
    return TechnicianSpec(TECHNICIANS[index], equipe, zone, tuple(competences))


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _weighted_family(rng: random.Random, client: ClientSpec) -> Family:
    # A client's own trade weighs three times as much as the other families.
    keys = list(FAMILIES)
    weights = [3 if k in client.families else 1 for k in keys]
    return FAMILIES[rng.choices(keys, weights=weights)[0]]


def _equipement(seed: int, index: int, clients: tuple[ClientSpec, ...]) -> EquipementSpec:
    rng = _rng(seed, "equipement", index)
    client = clients[index % len(clients)]
    family = _weighted_family(rng, client)
    marque, modele = rng.choice(family.models)
    criticite = rng.choices(("critique", "important", "standard", "non_critique"), weights=family.criticite)[0]
    start = date(2008, 1, 1) + timedelta(days=rng.randrange(17 * 365))
    tag = f"{family.code}-{client.code}-{index + 1:03d}"
    return EquipementSpec(
        index=index,
        nom=f"{tag} {family.label} {marque} {modele}",
        family=family,
        client=client,
        marque=marque,
        modele=modele,
        numero_serie=f"{_ascii(marque)[:2].upper()}{start.year % 100:02d}-{rng.randrange(10**6):06d}-{index + 1:03d}",
        localisation=f"{client.ville}, {rng.choice(client.sites)} - {rng.choice(family.zones)}",
        criticite=criticite,
        date_mise_en_service=start,
        date_fin_garantie=start + timedelta(days=365 * rng.choice((2, 3, 5))),
    )


def _plan(seed: int, equipement: EquipementSpec, counts: Counts) -> PlanSpec | None:
    rng = _rng(seed, "plan", equipement.index)
    # Critical equipment is always under a plan; the rest as often as makes the requested share.
    if equipement.criticite != "critique" and rng.random() >= counts.plans_share:
        return None
    family = equipement.family
    frequence = rng.choice(family.plan_frequences)
    horizon = {"hebdomadaire": 7, "mensuel": 30, "trimestriel": 90, "semestriel": 182, "annuel": 365}[frequence]
    return PlanSpec(
        equipement=equipement,
        frequence=frequence,
        days_ahead=1 + rng.randrange(horizon),
        technician=rng.randrange(counts.technicians) if rng.random() < 0.7 else None,
        statut="suspendu" if rng.random() < 0.08 else "actif",
        commentaire=f"{rng.choice(family.preventif)} (gamme {family.code}-{frequence[:3].upper()})",
    )


# --- interventions ---------------------------------------------------------------------------------

# How often each final statut occurs: a live CMMS has most of its history closed or archived.
STATUT_WEIGHTS = {
    "ouverte": 9,
    "affectee": 10,
    "en_cours": 5,
    "en_attente": 6,
    "cloturee": 33,
    "annulee": 10,
    "archivee": 27,
}
OPEN_STATUTS = frozenset(("ouverte", "affectee", "en_cours", "en_attente"))
TYPE_WEIGHTS = {"corrective": 55, "preventive": 25, "ameliorative": 8, "diagnostic": 12}
PRIORITE_WEIGHTS = {
    "corrective": {"urgente": 12, "haute": 33, "normale": 40, "basse": 15},
    "preventive": {"haute": 5, "normale": 40, "basse": 15, "programmee": 40},
    "ameliorative": {"normale": 40, "basse": 40, "programmee": 20},
    "diagnostic": {"haute": 25, "normale": 55, "basse": 20},
}


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def build_scenario(plan: DemoPlan, index: int) -> Scenario:
    rng = _rng(plan.seed, "intervention", index)
    # The first seven walk to each statut in turn: even a tiny data set shows every one.
    statut = STATUTS[index] if index < len(STATUTS) else _pick(rng, STATUT_WEIGHTS)
    # Open work sits on a minority of the fleet, as on a real site: the rest ends `operationnel` (assets
    # keeps an equipment `en maintenance` while any intervention on it is open).
    equipement = rng.choice(plan.troubled if statut in OPEN_STATUTS else plan.equipment)
    creation, rapport = _creation(rng, equipement)
    technician = _technician_for(rng, plan, equipement)
    other = _technician_for(rng, plan, equipement, avoid=technician)
    steps = _path(_Who(rng, technician, other, rapport), statut)
    return Scenario(index, statut, equipement, creation, _with_comments(rng, steps))


def _creation(rng: random.Random, equipement: EquipementSpec) -> tuple[dict[str, object], str]:
    """The creation body and the report the technician will write if it gets closed."""
    kind = _pick(rng, TYPE_WEIGHTS)
    priorite = _pick(rng, PRIORITE_WEIGHTS[kind])
    titre, rapport = _work(rng, equipement.family, kind)
    tag = equipement.nom.split(" ", 1)[0]
    source = rng.choice(DESCRIPTION_SOURCES).format(shift=rng.choice("ABC"), hour=rng.randrange(24))
    family = equipement.family
    body: dict[str, object] = {
        "titre": f"{titre} - {tag}",
        "description": f"{family.label} {equipement.marque} {equipement.modele}, {equipement.localisation}. {source}",
        "type": kind,
        "priorite": priorite,
        "duree_estimee": rng.choice((60, 90, 120, 180, 240, 360, 480)),
        "cout_estime": rng.randrange(500, 25_000) * 100,  # centimes
    }
    if priorite == "urgente" and rng.random() < 0.5:
        body["urgence"] = True  # the way the frontend flags an emergency (it forces priorite urgente)
    return body, rapport


def _work(rng: random.Random, family: Family, kind: str) -> tuple[str, str]:
    """A title of that kind for that equipment, and a closing report that matches it."""
    if kind == "corrective":
        return rng.choice(family.pannes)
    if kind == "preventive":
        task = rng.choice(family.preventif)
        remark = rng.choice(("aucune anomalie", "usure à surveiller à la prochaine visite", "consommables remplacés"))
        return task, f"Gamme « {task} » réalisée selon la fiche. Points de contrôle conformes, {remark}."
    if kind == "ameliorative":
        task = rng.choice(family.amelioration)
        return task, f"{task} : travaux réalisés, mise en service et essais concluants avec la production."
    task = rng.choice(family.diagnostic)
    advice = rng.choice(
        ("aucune action immédiate", "planifier un remplacement au prochain arrêt", "renforcer la fréquence de contrôle")
    )
    return task, f"{task} : mesures réalisées, rapport transmis au client. Recommandation : {advice}."


def _technician_for(rng: random.Random, plan: DemoPlan, equipement: EquipementSpec, avoid: int | None = None) -> int:
    """A technician of the client's region with a competence the equipment needs, else of the region,
    else anyone: how a dispatcher would choose."""
    candidates = list(range(len(plan.technicians)))
    if avoid is not None and len(candidates) > 1:
        candidates.remove(avoid)
    needed = set(equipement.family.competences)
    local = [i for i in candidates if plan.technicians[i].zone == equipement.client.zone]
    skilled = [i for i in local if needed & {nom for nom, _ in plan.technicians[i].competences}]
    return rng.choice(skilled or local or candidates)


@dataclass(frozen=True)
class _Who:
    """What the path builders need: the draw, the assigned technician, a second one for a
    reassignment, and the report to close with."""

    rng: random.Random
    technician: int
    other: int
    rapport: str


def _assigned(who: _Who) -> list[Step]:
    """Created already assigned, or created open and then assigned."""
    if who.rng.random() < 0.75:
        return [Step("create", "manager", technician=who.technician)]
    return [Step("create", "manager"), Step("affecter", "manager", technician=who.technician)]


def _started(who: _Who) -> list[Step]:
    steps = [*_assigned(who), Step("demarrer", "technician")]
    if who.rng.random() < 0.15:
        pause = {"remarque": who.rng.choice(PAUSE_REASONS)}
        steps += [Step("suspendre", "technician", pause), Step("reprendre", "technician")]
    return steps


def _closed(who: _Who) -> list[Step]:
    rng = who.rng
    body: dict[str, object] = {
        "rapport": who.rapport,
        "duree_reelle": rng.choice((45, 60, 90, 120, 150, 200, 240, 300, 420)),
        "cout_reel": rng.randrange(300, 30_000) * 100,  # centimes
    }
    # Most are closed by the technician on site; some by the manager after a phone report.
    closer = "technician" if rng.random() < 0.85 else "manager"
    return [*_started(who), Step("cloturer", closer, body)]


def _cancelled(who: _Who) -> list[Step]:
    reason = {"remarque": who.rng.choice(CANCEL_REASONS)}
    roll = who.rng.random()
    if roll < 0.5:
        return [Step("create", "manager"), Step("annuler", "manager", reason)]
    if roll < 0.75:
        return [*_assigned(who), Step("annuler", "manager", reason)]
    return [*_started(who), Step("annuler", who.rng.choice(("manager", "technician")), reason)]


def _path(who: _Who, statut: str) -> list[Step]:
    rng = who.rng
    if statut == "ouverte":
        if rng.random() < 0.1:
            return [*_assigned(who), Step("desaffecter", "manager", {"remarque": rng.choice(UNASSIGN_REASONS)})]
        return [Step("create", "manager")]
    if statut == "affectee":
        steps = _assigned(who)
        if rng.random() < 0.1:
            reason = {"remarque": rng.choice(UNASSIGN_REASONS)}
            steps.append(Step("affecter", "manager", reason, technician=who.other))
        return steps
    if statut == "en_cours":
        return _started(who)
    if statut == "en_attente":
        return [*_started(who), Step("suspendre", "technician", {"remarque": rng.choice(PAUSE_REASONS)})]
    if statut == "cloturee":
        return _closed(who)
    if statut == "annulee":
        return _cancelled(who)
    # archivee: closed work mostly, cancelled requests sometimes.
    before = _closed(who) if rng.random() < 0.85 else _cancelled(who)
    return [*before, Step("archiver", "manager")]


def _with_comments(rng: random.Random, steps: list[Step]) -> tuple[Step, ...]:
    """About one intervention in eight gets one or two comments, somewhere before its archiving, by the
    manager or by the technician who holds it at that moment."""
    if rng.random() >= 0.125:
        return tuple(steps)
    result = list(steps)
    for _ in range(rng.choice((1, 1, 2))):
        text = rng.choice(COMMENTS).format(n=rng.randrange(1000, 9999))
        at = rng.randrange(1, len(result) + 1)
        if result[at - 1].action == "archiver":
            at -= 1  # an archived intervention is history: comment before
        held = _assigned_after(result[:at])
        actor = rng.choice(("technician", "manager")) if held else "manager"
        result.insert(at, Step("commenter", actor, {"contenu": text}))
    return tuple(result)


def _assigned_after(steps: list[Step]) -> bool:
    """Whether a technician holds the intervention once `steps` are done."""
    held = False
    for step in steps:
        if step.action in ("create", "affecter"):
            held = step.technician is not None
        elif step.action == "desaffecter":
            held = False
    return held
