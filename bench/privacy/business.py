"""Business text without personal data, deterministic from a seed: the negatives of the
per-request benchmark (`requests.py`).

    docs = negatives(n=400, seed=1)      # list[Doc]: kind, text (1 to 3 KB each)

Kinds, each a whole document as it would be pasted into a prompt:

- `invoice`: invoice, customer, order, purchase-order and delivery-note numbers, line
  items with article numbers and EAN-13 codes, amounts, VAT rates, a company VAT number,
  an ISO 11649 payment reference, dates;
- `shipping`: order confirmations and shipping notices with carrier tracking numbers
  (UPS, DHL, DPD, GLS, SSCC), parcel weights and dimensions, delivery windows;
- `log`: application and web-server logs: ISO and epoch timestamps, levels, request
  and trace ids (numeric, hex, UUID), durations, sizes, status codes, pod names, paths;
- `code`: Python, Java, JavaScript and Go snippets with numeric constants, test
  fixtures of order and product ids, version strings, hashes;
- `sql`: queries and INSERT statements over orders, products and stock;
- `csv`: exports of orders, stock and sales with a header row;
- `product`: product sheets: model and part numbers, dimensions, weights, electrical
  ratings, EAN codes, customs tariff numbers, certificates;
- `report`: status reports and meeting notes: budgets, percentages, ticket numbers,
  project codes, dates, KPIs, in English, German or French.

What is left out on purpose: values whose type the scanner defines as personal whoever
they belong to (`findings.TYPES`: e-mail addresses, telephone numbers, IBANs, IP
addresses, person names). A company's switchboard number, its IBAN on an invoice, a
server's private address in a log are not personal data under the GDPR, but the scanner
cannot tell them from a person's and counts them, by design; a text holding one is not
a negative. User ids and customer account numbers of persons are left out too: they are
pseudonymous personal data. Company VAT numbers are in (class `confidential`).

Numbers are drawn as such systems make them: running counters, SAP-style ranges
(purchase orders 45..., deliveries 80...), random carrier numbers with their own check
digits (UPS, SSCC, EAN, ISO 11649), epoch seconds and milliseconds of the last two
years. Nothing is chosen to avoid an identifier's check.
"""

from __future__ import annotations

import datetime
import hashlib
import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import stdnum.eu.vat as eu_vat

KINDS = ("invoice", "shipping", "log", "code", "sql", "csv", "product", "report")


@dataclass
class Doc:
    kind: str
    text: str


# -- numbers --------------------------------------------------------------------------
class Numbers:
    """The numbers business systems print, from one random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.today = datetime.datetime(2025, 11, 24, 9, 30)
        self.counter = rng.randrange(100, 90000)

    def d(self, n: int) -> str:
        return "".join(self.rng.choice(string.digits) for _ in range(n))

    def nz(self, n: int) -> str:  # n digits, no leading zero
        return self.rng.choice("123456789") + self.d(n - 1)

    def date(self, back_days: int = 400) -> datetime.datetime:
        return self.today - datetime.timedelta(days=self.rng.randrange(back_days), seconds=self.rng.randrange(86400))

    def fmt_date(self, lang: str, d: datetime.date | None = None) -> str:
        d = d or self.date()
        return {"en": d.strftime("%Y-%m-%d"), "de": d.strftime("%d.%m.%Y"), "fr": d.strftime("%d/%m/%Y")}[lang]

    def iso(self) -> str:
        d = self.date(30)
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.rng.randrange(1000):03d}Z"

    def epoch(self, ms: bool = False) -> str:
        t = int(self.date(700).timestamp())
        return str(t * 1000 + self.rng.randrange(1000)) if ms else str(t)

    def invoice_no(self) -> str:
        y = self.date().year
        self.counter += self.rng.randrange(1, 40)
        return self.rng.choice(
            [
                f"INV-{y}-{self.counter:05d}",
                f"{y}-{self.counter:05d}",
                f"RE{y}{self.counter:06d}",
                f"F{y % 100}/{self.counter:05d}",
                f"{y % 100}{self.counter:06d}",
                str(self.counter + 1_000_000),
            ]
        )

    def order_no(self) -> str:
        return self.rng.choice(
            [
                self.nz(6),
                self.nz(7),
                self.nz(8),
                self.nz(9),
                self.nz(10),
                f"{self.nz(3)}-{self.d(7)}-{self.d(7)}",
                f"SO{self.d(7)}",
                f"#{self.nz(5)}",
            ]
        )

    def po_no(self) -> str:
        return "45" + self.d(8)  # SAP purchase orders

    def delivery_no(self) -> str:
        return "80" + self.d(8)  # SAP outbound deliveries

    def customer_no(self) -> str:  # of a company: a business account
        return self.rng.choice([self.nz(5), self.nz(6), f"K{self.d(5)}", f"C-{self.d(6)}"])

    def article_no(self) -> str:
        return self.rng.choice(
            [
                self.nz(6),
                f"{self.nz(6)}-{self.d(2)}",
                f"{self.rng.choice(string.ascii_uppercase)}"
                f"{self.rng.choice(string.ascii_uppercase)}-{self.d(4)}-{self.d(3)}",
                self.nz(8),
            ]
        )

    def ean13(self) -> str:
        body = self.rng.choice(
            ["40", "41", "42", "43", "30", "37", "80", "84", "87", "54", "57", "59", "90", "76"]
        ) + self.d(10)
        s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body))
        return body + str((10 - s % 10) % 10)

    def sscc(self) -> str:  # GS1 serial shipping container code, 18 digits, mod 10
        body = self.rng.choice("0123") + self.rng.choice(["40", "43", "30", "87"]) + self.d(14)
        s = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(body))
        return body + str((10 - s % 10) % 10)

    def ups(self) -> str:
        return "1Z" + "".join(self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(6)) + self.d(10)

    def tracking(self) -> tuple[str, str]:
        carrier = self.rng.choice(["UPS", "DHL", "DPD", "GLS", "SSCC", "PostNL", "Colissimo"])
        value = {
            "UPS": self.ups,
            "DHL": lambda: self.rng.choice([self.d(12), "JJD" + self.d(18), self.d(10)]),
            "DPD": lambda: "0" + self.d(13),
            "GLS": lambda: self.rng.choice([self.d(11), self.d(12)]),
            "SSCC": self.sscc,
            "PostNL": lambda: "3S" + "".join(self.rng.choice(string.ascii_uppercase) for _ in range(4)) + self.d(9),
            "Colissimo": lambda: self.rng.choice(["6A", "8R", "5V"]) + self.d(11),
        }[carrier]()
        return carrier, value

    def rf_reference(self) -> str:  # ISO 11649 creditor reference, mod 97
        ref = self.nz(self.rng.randrange(8, 15))
        check = 98 - int(ref + "271500") % 97  # "RF00" moved to the end, letters as numbers (R=27, F=15)
        return f"RF{check:02d}{ref}"

    def vat(self) -> str:  # a company's VAT number (class confidential)
        for _ in range(5000):
            cc = self.rng.choice(["DE", "FR", "NL", "BE", "AT", "IT"])
            body = {
                "DE": lambda: self.nz(9),
                "FR": lambda: self.d(11),
                "NL": lambda: self.d(9) + "B01",
                "BE": lambda: "0" + self.d(9),
                "AT": lambda: "U" + self.d(8),
                "IT": lambda: self.d(11),
            }[cc]()
            if eu_vat.is_valid(cc + body):
                return cc + body
        raise RuntimeError("no VAT number")

    def amount(self, lo: float = 1, hi: float = 20000, lang: str = "en") -> str:
        v = self.rng.uniform(lo, hi)
        s = f"{v:,.2f}"
        if lang == "de":
            s = s.replace(",", "X").replace(".", ",").replace("X", ".")
        elif lang == "fr":
            s = s.replace(",", " ").replace(".", ",")
        return s

    def hexs(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def sha(self) -> str:
        return hashlib.sha256(self.d(12).encode()).hexdigest()

    def version(self) -> str:
        return f"{self.rng.randrange(0, 12)}.{self.rng.randrange(0, 30)}.{self.rng.randrange(0, 40)}"


# -- vocabulary ---------------------------------------------------------------------------
COMPANIES = [
    "Nordwerk Industrietechnik GmbH",
    "Atelier Lumière SAS",
    "Baltic Freight OÜ",
    "Van Dijk Logistiek B.V.",
    "Officine Meccaniche Lombarde S.p.A.",
    "Iberia Packaging S.L.",
    "Polmet sp. z o.o.",
    "Alpen Pumpen AG",
    "Helios Components Ltd",
    "Danube Software Kft.",
    "Rheintal Elektro GmbH & Co. KG",
    "Nordic Timber AB",
]
CITIES = ["Hamburg", "Lyon", "Rotterdam", "Milano", "Valencia", "Poznań", "Linz", "Tallinn", "Göteborg", "Porto"]
PRODUCTS = [
    ("Hex bolt M8x40 DIN 933 A2", 0.1, 0.5),
    ("Ball bearing 6204-2RS", 1.5, 6),
    ("Cable gland M20x1.5 IP68", 0.8, 3),
    ("Pallet wrap film 500 mm x 300 m", 9, 25),
    ("Industrial pump DN50 PN16", 400, 2500),
    ("LED panel 600x600 36W 4000K", 18, 60),
    ("Toner cartridge black, 10k pages", 40, 120),
    ("Safety gloves EN 388, size 9", 1, 4),
    ("Aluminium profile 40x40 B-type slot 8", 12, 40),
    ("Frequency inverter 5.5 kW 400 V", 300, 900),
    ("Copy paper A4 80 g/m², 500 sheets", 3, 7),
    ("Stainless steel sheet 1.4301 2 mm", 50, 200),
    ("Gear motor 0.37 kW i=20", 150, 600),
    ("Server rack 42U 800x1000", 600, 1500),
    ("Cat6a patch cable 3 m", 2, 8),
    ('Hydraulic hose 1/2" 2SN', 8, 30),
]
SERVICES = ["billing", "checkout", "inventory", "shipping", "pricing", "search", "auth-gateway", "catalog", "reporting"]
PATHS = [
    "/api/v1/orders/{id}",
    "/api/v2/invoices/{id}/pdf",
    "/api/v1/products/{id}",
    "/api/v1/stock/{id}",
    "/healthz",
    "/metrics",
    "/api/v1/shipments/{id}/events",
    "/static/app.{hex}.js",
    "/api/v1/cart",
]

T = dict[str, str]
LABELS: dict[str, T] = {
    "en": {
        "invoice": "Invoice",
        "inv_no": "Invoice no.",
        "date": "Invoice date",
        "cust": "Customer no.",
        "order": "Order no.",
        "po": "Your PO",
        "dn": "Delivery note",
        "vat": "VAT ID",
        "net": "Net total",
        "tax": "VAT",
        "total": "Total due",
        "terms": "Payment terms: 30 days net, 2% discount if paid within 10 days.",
        "due": "Due date",
        "ref": "Payment reference",
        "pos": "Pos",
        "art": "Article",
        "desc": "Description",
        "qty": "Qty",
        "price": "Unit price",
        "amount": "Amount",
        "thanks": "Thank you for your business.",
    },
    "de": {
        "invoice": "Rechnung",
        "inv_no": "Rechnungsnr.",
        "date": "Rechnungsdatum",
        "cust": "Kundennr.",
        "order": "Auftragsnr.",
        "po": "Ihre Bestellung",
        "dn": "Lieferschein",
        "vat": "USt-IdNr.",
        "net": "Nettobetrag",
        "tax": "MwSt.",
        "total": "Gesamtbetrag",
        "terms": "Zahlbar innerhalb von 30 Tagen netto, 2 % Skonto bei Zahlung binnen 10 Tagen.",
        "due": "Fällig am",
        "ref": "Verwendungszweck",
        "pos": "Pos.",
        "art": "Artikel",
        "desc": "Bezeichnung",
        "qty": "Menge",
        "price": "Einzelpreis",
        "amount": "Betrag",
        "thanks": "Vielen Dank für Ihren Auftrag.",
    },
    "fr": {
        "invoice": "Facture",
        "inv_no": "Facture n°",
        "date": "Date de facture",
        "cust": "N° client",
        "order": "N° de commande",
        "po": "Votre commande",
        "dn": "Bon de livraison",
        "vat": "N° TVA intracom.",
        "net": "Total HT",
        "tax": "TVA",
        "total": "Total TTC",
        "terms": "Paiement à 30 jours net, escompte de 2 % pour paiement sous 10 jours.",
        "due": "Échéance",
        "ref": "Référence de paiement",
        "pos": "Pos.",
        "art": "Article",
        "desc": "Désignation",
        "qty": "Qté",
        "price": "Prix unitaire",
        "amount": "Montant",
        "thanks": "Merci de votre confiance.",
    },
}


# -- documents ------------------------------------------------------------------------------
def _fill(rng: random.Random, head: list[str], more: Callable[[], list[str]], tail: list[str], size: int) -> str:
    lines = list(head)
    while len("\n".join(lines + tail).encode()) < size:
        lines.extend(more())
    return "\n".join(lines + tail)


def invoice(n: Numbers, size: int) -> str:
    rng = n.rng
    lang = rng.choice(["en", "de", "fr"])
    L = LABELS[lang]
    seller, buyer = rng.sample(COMPANIES, 2)
    head = [
        f"{seller}, {rng.choice(CITIES)}",
        f"{L['vat']}: {n.vat()}",
        "",
        f"{L['invoice'].upper()}",
        f"{L['inv_no']}: {n.invoice_no()}",
        f"{L['date']}: {n.fmt_date(lang)}",
        f"{L['cust']}: {n.customer_no()}",
        f"{L['order']}: {n.order_no()}",
        f"{L['po']}: {n.po_no()}",
        f"{L['dn']}: {n.delivery_no()}",
        f"{buyer}, {rng.choice(CITIES)}",
        "",
        f"{L['pos']} | {L['art']} | EAN | {L['desc']} | {L['qty']} | {L['price']} | {L['amount']}",
    ]
    pos = [0]

    def item() -> list[str]:
        pos[0] += 1
        name, lo, hi = rng.choice(PRODUCTS)
        qty = rng.choice([1, 2, 5, 10, 20, 50, 100, 200, 500])
        price = rng.uniform(lo, hi)
        return [f"{pos[0]} | {n.article_no()} | {n.ean13()} | {name} | {qty} | {price:.2f} | {qty * price:,.2f}"]

    tail = [
        "",
        f"{L['net']}: {n.amount(lang=lang)} EUR",
        f"{L['tax']} {rng.choice([19, 20, 21, 22])} %: {n.amount(10, 4000, lang)} EUR",
        f"{L['total']}: {n.amount(lang=lang)} EUR",
        L["terms"],
        f"{L['due']}: {n.fmt_date(lang)}",
        f"{L['ref']}: {n.rf_reference()}",
        L["thanks"],
    ]
    return _fill(rng, head, item, tail, size)


def shipping(n: Numbers, size: int) -> str:
    rng = n.rng
    lang = rng.choice(["en", "de", "fr"])
    intro = {
        "en": "Your order has shipped. Here are the details of your shipment.",
        "de": "Ihre Bestellung wurde versandt. Hier die Details zu Ihrer Sendung.",
        "fr": "Votre commande a été expédiée. Voici le détail de votre envoi.",
    }[lang]
    head = [intro, f"{LABELS[lang]['order']}: {n.order_no()}", f"{LABELS[lang]['date']}: {n.fmt_date(lang)}", ""]

    def parcel() -> list[str]:
        carrier, number = n.tracking()
        w = rng.uniform(0.3, 31.5)
        dims = f"{rng.randrange(20, 120)} x {rng.randrange(15, 80)} x {rng.randrange(5, 60)} cm"
        eta = n.fmt_date(lang, (n.today + datetime.timedelta(days=rng.randrange(1, 6))).date())
        words = {
            "en": ("Parcel", "Carrier", "Tracking", "Weight", "Expected delivery", "between"),
            "de": (
                "Paket",
                "Versanddienstleister",
                "Sendungsverfolgung",
                "Gewicht",
                "Voraussichtliche Zustellung",
                "zwischen",
            ),
            "fr": ("Colis", "Transporteur", "Suivi", "Poids", "Livraison prévue", "entre"),
        }[lang]
        out = [
            f"{words[0]} {rng.randrange(1, 9)}/{rng.randrange(1, 9)} - {words[1]}: {carrier}",
            f"{words[2]}: {number}",
            f"{words[3]}: {w:.1f} kg, {dims}",
            f"{words[4]}: {eta}, {words[5]} {rng.randrange(8, 13)}:00 - {rng.randrange(13, 19)}:00",
        ]
        if rng.random() < 0.5:
            out.append(
                f"{rng.choice(['Pallet', 'Palette'])} SSCC {n.sscc()}, {rng.randrange(1, 30)} {rng.choice(['cartons', 'Kartons', 'colis'])}"
            )
        if rng.random() < 0.4:
            name, _, _ = rng.choice(PRODUCTS)
            out.append(f"  {rng.randrange(1, 50)} x {name} ({n.article_no()})")
        return out + [""]

    return _fill(rng, head, parcel, [], size)


def log(n: Numbers, size: int) -> str:
    rng = n.rng
    svc = rng.choice(SERVICES)
    style = rng.choice(["plain", "json", "nginx", "java"])
    pod = f"{svc}-{n.hexs(9)}-{''.join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(5))}"

    def line() -> list[str]:
        level = rng.choices(["INFO", "DEBUG", "WARN", "ERROR"], [6, 3, 2, 1])[0]
        path = rng.choice(PATHS).format(id=rng.choice([n.nz(6), n.nz(8), n.nz(9), n.uuid()]), hex=n.hexs(8))
        ms = rng.randrange(1, 3000)
        status = rng.choices([200, 201, 204, 304, 400, 404, 409, 500, 503], [20, 3, 2, 3, 2, 2, 1, 1, 1])[0]
        if style == "json":
            return [
                '{"ts": ' + rng.choice([n.epoch(), n.epoch(True), f'"{n.iso()}"']) + f', "level": "{level.lower()}", '
                f'"service": "{svc}", "trace_id": "{n.hexs(32)}", "span_id": "{n.hexs(16)}", "method": "GET", '
                f'"path": "{path}", "status": {status}, "duration_ms": {ms}, "bytes": {rng.randrange(100, 2_000_000)}}}'
            ]
        if style == "nginx":
            return [
                f'- - [{n.date(30).strftime("%d/%b/%Y:%H:%M:%S")} +0000] "GET {path} HTTP/1.1" {status} '
                f'{rng.randrange(100, 500000)} "-" "{rng.choice(["curl/8.5.0", "Go-http-client/2.0", "python-httpx/0.27.0", "kube-probe/1.29"])}" '
                f"rt={ms / 1000:.3f} uct=0.00{rng.randrange(1, 9)} req_id={n.hexs(32)}"
            ]
        if style == "java":
            out = [
                f"{n.iso().replace('T', ' ')[:-1]} {level:5} [{svc},{n.hexs(16)},{n.hexs(16)}] {rng.randrange(1000, 40000)} --- "
                f"[nio-8080-exec-{rng.randrange(1, 200)}] c.e.{svc}.web.{rng.choice(['OrderController', 'StockService', 'PriceCache'])}"
                f" : {rng.choice(['Completed request', 'Cache miss for key', 'Retrying call to', 'Slow query'])} {path} in {ms} ms"
            ]
            if level == "ERROR":
                out += [
                    f"java.net.SocketTimeoutException: Read timed out after {rng.choice([5000, 10000, 30000])} ms",
                    f"\tat org.apache.http.impl.io.SessionInputBufferImpl.fillBuffer(SessionInputBufferImpl.java:{rng.randrange(100, 400)})",
                    f"\tat com.example.{svc}.client.UpstreamClient.call(UpstreamClient.java:{rng.randrange(20, 300)})",
                ]
            return out
        return [
            f"{n.iso()} {level} {svc}[{rng.randrange(1, 65000)}]: method=GET path={path} status={status} "
            f"duration={ms}ms request_id={rng.choice([n.uuid(), n.hexs(16), n.epoch(True) + n.d(3)])} pod={pod}"
        ]

    head = [f"# logs of {svc} in namespace prod-eu, pod {pod}, image registry.example.com/{svc}@sha256:{n.sha()}"]
    return _fill(rng, head, line, [], size)


def code(n: Numbers, size: int) -> str:
    rng = n.rng

    def snippet() -> list[str]:
        which = rng.randrange(5)
        if which == 0:
            return [
                "def test_order_total():",
                f'    order = Order(id={n.nz(9)}, currency="EUR")',
                f'    order.add(Line(sku="{n.article_no()}", ean="{n.ean13()}", qty={rng.randrange(1, 20)}, price=Decimal("{rng.uniform(1, 500):.2f}")))',
                f'    assert order.total() == Decimal("{rng.uniform(1, 5000):.2f}")',
                f"    assert order.created_at == datetime.fromtimestamp({n.epoch()}, tz=UTC)",
                "",
            ]
        if which == 1:
            return [
                "public final class RetryPolicy {",
                f"    private static final long TIMEOUT_MS = {rng.choice([5000, 30000, 120000])}L;",
                f"    private static final int MAX_RETRIES = {rng.randrange(1, 8)};",
                f"    private static final long SEED = {n.nz(rng.choice([9, 10, 11, 12]))}L;",
                "    static final int MODULUS = 1_000_000_007;",
                "    static final long MAX_UINT = 4294967295L;",
                f"    // see JIRA PLAT-{rng.randrange(100, 9999)}, fixed in {n.version()}",
                "}",
                "",
            ]
        if which == 2:
            return [
                "const config = {",
                f'  apiVersion: "{n.version()}",',
                f"  cacheTtlSeconds: {rng.choice([60, 300, 3600, 86400])},",
                f'  buildId: "{n.hexs(40)}",',
                f"  releasedAt: {n.epoch(True)},",
                f"  maxUploadBytes: {rng.choice([10485760, 52428800, 104857600])},",
                "};",
                f"export const FIXTURE_ORDER_IDS = [{', '.join(n.nz(9) for _ in range(rng.randrange(2, 6)))}];",
                "",
            ]
        if which == 3:
            return [
                "func (s *StockService) Reserve(ctx context.Context, sku string, qty int) error {",
                f"\tctx, cancel := context.WithTimeout(ctx, {rng.randrange(1, 30)}*time.Second)",
                "\tdefer cancel()",
                f"\tif qty > {rng.choice([1000, 5000, 10000])} {{",
                "\t\treturn ErrTooLarge",
                "\t}",
                f"\treturn s.repo.Reserve(ctx, sku, qty, {n.nz(10)})",
                "}",
                "",
            ]
        return [
            f"# migration {n.date().strftime('%Y%m%d%H%M%S')}_add_stock_index",
            "def upgrade():",
            f'    op.create_index("ix_stock_{n.hexs(6)}", "stock", ["warehouse_id", "sku"])',
            f'    op.execute("UPDATE stock SET reserved = 0 WHERE warehouse_id = {rng.randrange(1, 40)}")',
            "",
        ]

    head = [
        rng.choice(
            [
                "Can you review this change?",
                "Why does this test fail on CI?",
                "Please refactor this:",
                "Here is the diff, commit " + n.hexs(40) + ":",
            ]
        ),
        "```",
    ]
    return _fill(rng, head, snippet, ["```"], size)


def sql(n: Numbers, size: int) -> str:
    rng = n.rng

    def stmt() -> list[str]:
        which = rng.randrange(4)
        if which == 0:
            return [
                "SELECT o.id, o.created_at, SUM(l.qty * l.unit_price) AS total FROM orders o JOIN order_lines l ON l.order_id = o.id",
                f"WHERE o.created_at >= '{n.date().strftime('%Y-%m-%d')}' AND o.status = 'SHIPPED' AND o.id > {n.nz(9)}",
                "GROUP BY o.id, o.created_at ORDER BY total DESC LIMIT 50;",
                "",
            ]
        if which == 1:
            rows = ",\n".join(
                f"  ({n.nz(rng.choice([6, 9, 10]))}, '{n.article_no()}', '{n.ean13()}', {rng.randrange(0, 5000)}, "
                f"{rng.uniform(1, 900):.2f}, '{n.date().strftime('%Y-%m-%d %H:%M:%S')}')"
                for _ in range(rng.randrange(2, 6))
            )
            return ["INSERT INTO products (id, sku, ean, stock, price, updated_at) VALUES", rows + ";", ""]
        if which == 2:
            return [
                f"UPDATE stock SET qty = qty - {rng.randrange(1, 100)} WHERE warehouse_id = {rng.randrange(1, 40)} "
                f"AND sku = '{n.article_no()}';",
                "",
            ]
        return [
            "EXPLAIN ANALYZE SELECT * FROM shipments WHERE tracking_no = '" + n.tracking()[1] + "';",
            f"-- Index Scan using ix_shipments_tracking on shipments (cost=0.43..8.45 rows=1) (actual time=0.0{rng.randrange(10, 99)}..0.0{rng.randrange(10, 99)} rows=1 loops=1)",
            f"-- Planning Time: 0.{rng.randrange(100, 999)} ms, Execution Time: 0.{rng.randrange(10, 99)} ms",
            "",
        ]

    head = [
        rng.choice(
            [
                "This query is slow on production, any idea?",
                "Please check these statements before I run them:",
                "Migration script for the stock tables:",
            ]
        )
    ]
    return _fill(rng, head, stmt, [], size)


def csv(n: Numbers, size: int) -> str:
    rng = n.rng
    sep = rng.choice([",", ";", "\t"])
    which = rng.randrange(3)
    if which == 0:
        header = ["order_id", "order_date", "sku", "ean", "qty", "net_amount", "currency", "warehouse"]
        row = lambda: [  # noqa: E731
            n.order_no().lstrip("#"),
            n.fmt_date("en"),
            n.article_no(),
            n.ean13(),
            str(rng.randrange(1, 500)),
            f"{rng.uniform(1, 9000):.2f}",
            "EUR",
            rng.choice(["HAM1", "LYS2", "RTM1", "MIL3"]),
        ]
    elif which == 1:
        header = ["shipment_id", "carrier", "tracking_no", "weight_kg", "shipped_at", "delivered_at"]

        def row() -> list[str]:
            carrier, number = n.tracking()
            return [n.nz(rng.choice([7, 9, 10])), carrier, number, f"{rng.uniform(0.2, 30):.2f}", n.iso(), n.iso()]
    else:
        header = ["date", "store", "article", "units_sold", "revenue", "margin_pct", "pos_terminal"]
        row = lambda: [  # noqa: E731
            n.fmt_date("en"),
            f"S{rng.randrange(100, 999)}",
            n.article_no(),
            str(rng.randrange(0, 800)),
            f"{rng.uniform(0, 50000):.2f}",
            f"{rng.uniform(5, 45):.1f}",
            f"T{n.d(4)}",
        ]
    head = [
        rng.choice(
            [
                "Export from the ERP, can you summarise it?",
                "Here is the CSV, please find anomalies:",
                "Daily extract attached below.",
            ]
        ),
        sep.join(header),
    ]
    return _fill(rng, head, lambda: [sep.join(row())], [], size)


def product(n: Numbers, size: int) -> str:
    rng = n.rng
    name, lo, hi = rng.choice(PRODUCTS)
    head = [
        f"PRODUCT DATA SHEET - {name}",
        f"Manufacturer: {rng.choice(COMPANIES)}",
        f"Model: {rng.choice(['XR', 'PX', 'ND', 'HL'])}-{rng.randrange(100, 9999)}",
    ]

    def block() -> list[str]:
        which = rng.randrange(5)
        if which == 0:
            return [
                f"Part number: {rng.randrange(1, 9)}ES{rng.randrange(1, 9)} {n.d(3)}-{rng.randrange(1, 9)}{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}{n.d(2)}-0{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}0",
                f"Article no.: {n.article_no()}",
                f"EAN: {n.ean13()}",
                f"Customs tariff (HS): {n.d(4)} {n.d(2)} {n.d(2)}",
            ]
        if which == 1:
            return [
                f"Dimensions (W x H x D): {rng.randrange(50, 2000)} x {rng.randrange(50, 2000)} x {rng.randrange(20, 900)} mm",
                f"Weight: {rng.uniform(0.1, 400):.1f} kg",
                f"Packaging: {rng.randrange(1, 50)} pcs per carton, {rng.randrange(10, 80)} cartons per pallet",
            ]
        if which == 2:
            return [
                f"Rated voltage: {rng.choice([24, 230, 400])} V AC, {rng.choice([50, 60])} Hz",
                f"Rated power: {rng.uniform(0.1, 30):.2f} kW",
                f"Protection: IP{rng.choice([54, 55, 65, 66, 67, 68])}, insulation class {rng.choice('BFH')}",
                f"Operating temperature: -{rng.randrange(5, 40)} °C to +{rng.randrange(40, 90)} °C",
            ]
        if which == 3:
            return [
                f"Certificates: CE, UKCA, EC type examination {rng.choice(['TÜV', 'DEKRA', 'SGS'])} {n.d(2)} ATEX {n.d(4)} X",
                f"Notified body {n.d(4)}, declaration of conformity DoC-{n.date().year}-{n.d(4)}",
                f"Firmware: v{n.version()} (build {n.d(5)})",
            ]
        return [
            f"Serial numbers from {n.nz(10)} to {n.nz(10)}, batch {n.date().strftime('%y%m')}-{n.d(3)}",
            f"List price: {rng.uniform(lo, hi):.2f} EUR, minimum order quantity {rng.choice([1, 10, 50, 100])}",
            f"Spare parts kit: {n.article_no()}, seal set: {n.article_no()}",
        ]

    return _fill(
        rng,
        head,
        block,
        [f"Data sheet revision {rng.randrange(1, 9)}, {n.fmt_date('en')}. Subject to technical changes."],
        size,
    )


REPORT_SENTENCES = {
    "en": [
        "The rollout of release {v} to the EU region finished on {date}; {pct}% of traffic is on it.",
        "Budget: {amount} EUR spent of {amount} EUR planned for Q{q} (cost centre {cc}).",
        "Ticket {ticket} (checkout latency) is closed; {ticket} is waiting for the vendor.",
        "Warehouse {wh} shipped {n} orders last week, {pct}% on time; returns were {pct}%.",
        "Project {proj} is on track: milestone {m} reached on {date}, the next one is due on {date}.",
        "We processed {big} events per day with a p99 latency of {ms} ms.",
        "Action items: update the runbook, renew the certificate before {date}, review the capacity plan.",
    ],
    "de": [
        "Das Release {v} ist seit {date} in der EU-Region aktiv; {pct} % des Traffics laufen darüber.",
        "Budget: {amount} EUR von {amount} EUR für Q{q} verbraucht (Kostenstelle {cc}).",
        "Ticket {ticket} (Latenz im Checkout) ist geschlossen; {ticket} wartet auf den Lieferanten.",
        "Lager {wh} hat letzte Woche {n} Aufträge versendet, {pct} % pünktlich.",
        "Projekt {proj} liegt im Plan: Meilenstein {m} am {date} erreicht, der nächste ist am {date} fällig.",
        "Wir verarbeiten {big} Ereignisse pro Tag bei einer p99-Latenz von {ms} ms.",
    ],
    "fr": [
        "La version {v} est en production dans la région UE depuis le {date} ; {pct} % du trafic y passe.",
        "Budget : {amount} EUR consommés sur {amount} EUR prévus au T{q} (centre de coût {cc}).",
        "Le ticket {ticket} (latence du paiement) est clos ; {ticket} attend le fournisseur.",
        "L'entrepôt {wh} a expédié {n} commandes la semaine dernière, {pct} % à l'heure.",
        "Le projet {proj} est dans les temps : jalon {m} atteint le {date}, le prochain est prévu le {date}.",
        "Nous traitons {big} événements par jour avec une latence p99 de {ms} ms.",
    ],
}


def report(n: Numbers, size: int) -> str:
    rng = n.rng
    lang = rng.choice(["en", "de", "fr"])
    head = [
        {"en": "Weekly status report", "de": "Wochenbericht", "fr": "Rapport hebdomadaire"}[lang]
        + f" - {n.fmt_date(lang)}"
    ]

    def sentence() -> list[str]:
        s = rng.choice(REPORT_SENTENCES[lang])
        while "{" in s:
            s = (
                s.replace("{v}", n.version(), 1)
                .replace("{date}", n.fmt_date(lang), 1)
                .replace("{pct}", str(rng.randrange(1, 100)), 1)
            )
            s = s.replace("{amount}", n.amount(1000, 2_000_000, lang), 1).replace("{q}", str(rng.randrange(1, 5)), 1)
            s = s.replace("{cc}", n.d(4), 1).replace(
                "{ticket}", f"{rng.choice(['OPS', 'SHOP', 'ERP', 'INC'])}-{rng.randrange(10, 99999)}", 1
            )
            s = s.replace("{wh}", rng.choice(["HAM1", "LYS2", "RTM1"]), 1).replace(
                "{n}", f"{rng.randrange(100, 90000):,}", 1
            )
            s = s.replace("{proj}", f"P-{n.date().year}-{n.d(3)}", 1).replace("{m}", f"M{rng.randrange(1, 9)}", 1)
            sep = {"en": ",", "de": ".", "fr": " "}[lang]
            s = s.replace("{big}", f"{rng.randrange(1, 900)}{sep}{n.d(3)}{sep}{n.d(3)}", 1)
            s = s.replace("{ms}", str(rng.randrange(5, 900)), 1)
        return [s]

    return _fill(rng, head, sentence, [], size)


GENERATORS: dict[str, Callable[[Numbers, int], str]] = {
    "invoice": invoice,
    "shipping": shipping,
    "log": log,
    "code": code,
    "sql": sql,
    "csv": csv,
    "product": product,
    "report": report,
}


def negatives(n: int = 400, seed: int = 1, kinds: tuple[str, ...] = KINDS) -> list[Doc]:
    """`n` documents of 1 to 3 KB, the kinds in turn."""
    rng = random.Random(seed)
    nums = Numbers(rng)
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        text = GENERATORS[kind](nums, rng.randrange(1000, 3000))
        out.append(Doc(kind, _cut(text, 3072)))
    return out


def _cut(text: str, limit: int) -> str:
    """At most `limit` bytes, cut at a line end."""
    if len(text.encode()) <= limit:
        return text
    lines = text.split("\n")
    while len("\n".join(lines).encode()) > limit and len(lines) > 1:
        lines.pop()
    return "\n".join(lines)
