"""ISO 3166-1 countries (alpha-2, alpha-3, English short name) and the aliases people write.

A user's usageLocation must be an ISO 3166-1 alpha-2 code. The table is data in code so the tool works
offline; ``lookup`` turns a code (any case), an alpha-3 code, an English name or a common alias
("UK", "USA", "Deutschland", "Holland") into the alpha-2 code.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

# alpha-2 | alpha-3 | English short name (249 officially assigned codes)
_TABLE = """\
AD|AND|Andorra
AE|ARE|United Arab Emirates
AF|AFG|Afghanistan
AG|ATG|Antigua and Barbuda
AI|AIA|Anguilla
AL|ALB|Albania
AM|ARM|Armenia
AO|AGO|Angola
AQ|ATA|Antarctica
AR|ARG|Argentina
AS|ASM|American Samoa
AT|AUT|Austria
AU|AUS|Australia
AW|ABW|Aruba
AX|ALA|Åland Islands
AZ|AZE|Azerbaijan
BA|BIH|Bosnia and Herzegovina
BB|BRB|Barbados
BD|BGD|Bangladesh
BE|BEL|Belgium
BF|BFA|Burkina Faso
BG|BGR|Bulgaria
BH|BHR|Bahrain
BI|BDI|Burundi
BJ|BEN|Benin
BL|BLM|Saint Barthélemy
BM|BMU|Bermuda
BN|BRN|Brunei Darussalam
BO|BOL|Bolivia
BQ|BES|Bonaire, Sint Eustatius and Saba
BR|BRA|Brazil
BS|BHS|Bahamas
BT|BTN|Bhutan
BV|BVT|Bouvet Island
BW|BWA|Botswana
BY|BLR|Belarus
BZ|BLZ|Belize
CA|CAN|Canada
CC|CCK|Cocos (Keeling) Islands
CD|COD|Congo, Democratic Republic of the
CF|CAF|Central African Republic
CG|COG|Congo
CH|CHE|Switzerland
CI|CIV|Côte d'Ivoire
CK|COK|Cook Islands
CL|CHL|Chile
CM|CMR|Cameroon
CN|CHN|China
CO|COL|Colombia
CR|CRI|Costa Rica
CU|CUB|Cuba
CV|CPV|Cabo Verde
CW|CUW|Curaçao
CX|CXR|Christmas Island
CY|CYP|Cyprus
CZ|CZE|Czechia
DE|DEU|Germany
DJ|DJI|Djibouti
DK|DNK|Denmark
DM|DMA|Dominica
DO|DOM|Dominican Republic
DZ|DZA|Algeria
EC|ECU|Ecuador
EE|EST|Estonia
EG|EGY|Egypt
EH|ESH|Western Sahara
ER|ERI|Eritrea
ES|ESP|Spain
ET|ETH|Ethiopia
FI|FIN|Finland
FJ|FJI|Fiji
FK|FLK|Falkland Islands (Malvinas)
FM|FSM|Micronesia, Federated States of
FO|FRO|Faroe Islands
FR|FRA|France
GA|GAB|Gabon
GB|GBR|United Kingdom
GD|GRD|Grenada
GE|GEO|Georgia
GF|GUF|French Guiana
GG|GGY|Guernsey
GH|GHA|Ghana
GI|GIB|Gibraltar
GL|GRL|Greenland
GM|GMB|Gambia
GN|GIN|Guinea
GP|GLP|Guadeloupe
GQ|GNQ|Equatorial Guinea
GR|GRC|Greece
GS|SGS|South Georgia and the South Sandwich Islands
GT|GTM|Guatemala
GU|GUM|Guam
GW|GNB|Guinea-Bissau
GY|GUY|Guyana
HK|HKG|Hong Kong
HM|HMD|Heard Island and McDonald Islands
HN|HND|Honduras
HR|HRV|Croatia
HT|HTI|Haiti
HU|HUN|Hungary
ID|IDN|Indonesia
IE|IRL|Ireland
IL|ISR|Israel
IM|IMN|Isle of Man
IN|IND|India
IO|IOT|British Indian Ocean Territory
IQ|IRQ|Iraq
IR|IRN|Iran, Islamic Republic of
IS|ISL|Iceland
IT|ITA|Italy
JE|JEY|Jersey
JM|JAM|Jamaica
JO|JOR|Jordan
JP|JPN|Japan
KE|KEN|Kenya
KG|KGZ|Kyrgyzstan
KH|KHM|Cambodia
KI|KIR|Kiribati
KM|COM|Comoros
KN|KNA|Saint Kitts and Nevis
KP|PRK|Korea, Democratic People's Republic of
KR|KOR|Korea, Republic of
KW|KWT|Kuwait
KY|CYM|Cayman Islands
KZ|KAZ|Kazakhstan
LA|LAO|Lao People's Democratic Republic
LB|LBN|Lebanon
LC|LCA|Saint Lucia
LI|LIE|Liechtenstein
LK|LKA|Sri Lanka
LR|LBR|Liberia
LS|LSO|Lesotho
LT|LTU|Lithuania
LU|LUX|Luxembourg
LV|LVA|Latvia
LY|LBY|Libya
MA|MAR|Morocco
MC|MCO|Monaco
MD|MDA|Moldova, Republic of
ME|MNE|Montenegro
MF|MAF|Saint Martin (French part)
MG|MDG|Madagascar
MH|MHL|Marshall Islands
MK|MKD|North Macedonia
ML|MLI|Mali
MM|MMR|Myanmar
MN|MNG|Mongolia
MO|MAC|Macao
MP|MNP|Northern Mariana Islands
MQ|MTQ|Martinique
MR|MRT|Mauritania
MS|MSR|Montserrat
MT|MLT|Malta
MU|MUS|Mauritius
MV|MDV|Maldives
MW|MWI|Malawi
MX|MEX|Mexico
MY|MYS|Malaysia
MZ|MOZ|Mozambique
NA|NAM|Namibia
NC|NCL|New Caledonia
NE|NER|Niger
NF|NFK|Norfolk Island
NG|NGA|Nigeria
NI|NIC|Nicaragua
NL|NLD|Netherlands
NO|NOR|Norway
NP|NPL|Nepal
NR|NRU|Nauru
NU|NIU|Niue
NZ|NZL|New Zealand
OM|OMN|Oman
PA|PAN|Panama
PE|PER|Peru
PF|PYF|French Polynesia
PG|PNG|Papua New Guinea
PH|PHL|Philippines
PK|PAK|Pakistan
PL|POL|Poland
PM|SPM|Saint Pierre and Miquelon
PN|PCN|Pitcairn
PR|PRI|Puerto Rico
PS|PSE|Palestine, State of
PT|PRT|Portugal
PW|PLW|Palau
PY|PRY|Paraguay
QA|QAT|Qatar
RE|REU|Réunion
RO|ROU|Romania
RS|SRB|Serbia
RU|RUS|Russian Federation
RW|RWA|Rwanda
SA|SAU|Saudi Arabia
SB|SLB|Solomon Islands
SC|SYC|Seychelles
SD|SDN|Sudan
SE|SWE|Sweden
SG|SGP|Singapore
SH|SHN|Saint Helena, Ascension and Tristan da Cunha
SI|SVN|Slovenia
SJ|SJM|Svalbard and Jan Mayen
SK|SVK|Slovakia
SL|SLE|Sierra Leone
SM|SMR|San Marino
SN|SEN|Senegal
SO|SOM|Somalia
SR|SUR|Suriname
SS|SSD|South Sudan
ST|STP|Sao Tome and Principe
SV|SLV|El Salvador
SX|SXM|Sint Maarten (Dutch part)
SY|SYR|Syrian Arab Republic
SZ|SWZ|Eswatini
TC|TCA|Turks and Caicos Islands
TD|TCD|Chad
TF|ATF|French Southern Territories
TG|TGO|Togo
TH|THA|Thailand
TJ|TJK|Tajikistan
TK|TKL|Tokelau
TL|TLS|Timor-Leste
TM|TKM|Turkmenistan
TN|TUN|Tunisia
TO|TON|Tonga
TR|TUR|Türkiye
TT|TTO|Trinidad and Tobago
TV|TUV|Tuvalu
TW|TWN|Taiwan
TZ|TZA|Tanzania, United Republic of
UA|UKR|Ukraine
UG|UGA|Uganda
UM|UMI|United States Minor Outlying Islands
US|USA|United States
UY|URY|Uruguay
UZ|UZB|Uzbekistan
VA|VAT|Holy See (Vatican City State)
VC|VCT|Saint Vincent and the Grenadines
VE|VEN|Venezuela
VG|VGB|Virgin Islands, British
VI|VIR|Virgin Islands, U.S.
VN|VNM|Viet Nam
VU|VUT|Vanuatu
WF|WLF|Wallis and Futuna
WS|WSM|Samoa
YE|YEM|Yemen
YT|MYT|Mayotte
ZA|ZAF|South Africa
ZM|ZMB|Zambia
ZW|ZWE|Zimbabwe
"""

#: Names people write that are not the short names above (compared after ``_key``).
ALIASES: dict[str, str] = {
    "UK": "GB",
    "U.K.": "GB",
    "Great Britain": "GB",
    "Britain": "GB",
    "England": "GB",
    "Scotland": "GB",
    "Wales": "GB",
    "Northern Ireland": "GB",
    "United Kingdom of Great Britain and Northern Ireland": "GB",
    "USA": "US",
    "U.S.A.": "US",
    "U.S.": "US",
    "America": "US",
    "United States of America": "US",
    "Deutschland": "DE",
    "Holland": "NL",
    "Nederland": "NL",
    "The Netherlands": "NL",
    "South Korea": "KR",
    "Korea": "KR",
    "North Korea": "KP",
    "Russia": "RU",
    "Czech Republic": "CZ",
    "Česko": "CZ",
    "Turkey": "TR",
    "Turkiye": "TR",
    "Ivory Coast": "CI",
    "Vietnam": "VN",
    "Laos": "LA",
    "Syria": "SY",
    "Iran": "IR",
    "Moldova": "MD",
    "Tanzania": "TZ",
    "Macau": "MO",
    "Swaziland": "SZ",
    "Burma": "MM",
    "Cape Verde": "CV",
    "East Timor": "TL",
    "Vatican": "VA",
    "Vatican City": "VA",
    "Micronesia": "FM",
    "Palestine": "PS",
    "Brunei": "BN",
    "Macedonia": "MK",
    "Hong Kong SAR": "HK",
    "UAE": "AE",
    "Emirates": "AE",
    "KSA": "SA",
    "DRC": "CD",
    "DR Congo": "CD",
    "Congo-Kinshasa": "CD",
    "Congo-Brazzaville": "CG",
    "Republic of the Congo": "CG",
    "Schweiz": "CH",
    "Suisse": "CH",
    "Svizzera": "CH",
    "España": "ES",
    "Österreich": "AT",
    "Sverige": "SE",
    "Norge": "NO",
    "Danmark": "DK",
    "Polska": "PL",
    "Italia": "IT",
    "Brasil": "BR",
    "Suomi": "FI",
    "België": "BE",
    "Belgique": "BE",
    "Éire": "IE",
    "Republic of Ireland": "IE",
    "Hrvatska": "HR",
    "Magyarország": "HU",
    "Slovensko": "SK",
    "Luxemburg": "LU",
    "Saint Helena": "SH",
    "Bolivia, Plurinational State of": "BO",
    "Venezuela, Bolivarian Republic of": "VE",
    "Taiwan, Province of China": "TW",
    "Kirgizstan": "KG",
    "Republic of Korea": "KR",
    "People's Republic of China": "CN",
    "PRC": "CN",
    "Mainland China": "CN",
    "Sint Maarten": "SX",
    "Curacao": "CW",
    "Reunion": "RE",
    "Aland": "AX",
}

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_PAREN = re.compile(r"\s*\([^)]*\)")


def _key(text: str) -> str:
    t = unicodedata.normalize("NFKD", text)
    t = "".join(ch for ch in t if not unicodedata.combining(ch)).casefold().replace("&", " and ")
    t = _NON_ALNUM.sub(" ", t).strip()
    if t.startswith("the "):
        t = t[4:]
    return t


COUNTRIES: dict[str, str] = {}  # alpha-2 -> English short name
ALPHA3: dict[str, str] = {}  # alpha-3 -> alpha-2
_BY_NAME: dict[str, str] = {}  # _key(name or alias) -> alpha-2


def _add_name(name: str, code: str) -> None:
    k = _key(name)
    if k:
        _BY_NAME.setdefault(k, code)


for _line in _TABLE.splitlines():
    _a2, _a3, _name = _line.split("|")
    COUNTRIES[_a2] = _name
    ALPHA3[_a3] = _a2
    _add_name(_name, _a2)
    _plain = _PAREN.sub("", _name)
    _add_name(_plain, _a2)
    if ", " in _plain:  # "Korea, Republic of" -> "Republic of Korea"
        _head, _, _tail = _plain.partition(", ")
        _add_name(f"{_tail} {_head}", _a2)
        if _a2 not in ("KP", "KR", "CD", "VG", "VI"):  # "Korea" alone is an alias for KR below
            _add_name(_head, _a2)
    for _m in re.finditer(r"\(([^)]*)\)", _name):
        if "part" not in _m.group(1):
            _add_name(_m.group(1), _a2)
    if _plain.startswith("Saint "):
        _add_name("St " + _plain[6:], _a2)
for _alias, _code in ALIASES.items():
    _BY_NAME[_key(_alias)] = _code


def lookup(text: str) -> str | None:
    """The alpha-2 code ``text`` names, or None."""
    t = text.strip()
    if len(t) == 2 and t.isascii() and t.isalpha():
        up = t.upper()
        if up in COUNTRIES:
            return up
    if len(t) == 3 and t.isascii() and t.isalpha():
        a2 = ALPHA3.get(t.upper())
        if a2:
            return a2
    return _BY_NAME.get(_key(t))


def suggest(text: str, n: int = 3) -> list[str]:
    """Close country names for a misspelt one, as "Name (XX)"."""
    hits = difflib.get_close_matches(_key(text), list(_BY_NAME), n=n, cutoff=0.75)
    out: list[str] = []
    for h in hits:
        code = _BY_NAME[h]
        label = f"{COUNTRIES[code]} ({code})"
        if label not in out:
            out.append(label)
    return out
