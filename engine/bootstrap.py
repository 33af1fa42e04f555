"""Reference data and accounts: the regency's villages, signer keys, and the demo."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import regions
from engine.config import Settings
from engine.errors import InvalidInput
from engine.people import signers
from engine.people.acting import own_title
from engine.people.nik import make_nik
from engine.people.users import MIN_PASSWORD, Actor, create_user, issue_token
from engine.storage.models import District, Resident, User, Village
from engine.trust.pki import init_pki, issue_signer


def seed_regions(session: Session) -> int:
    """Insert the 12 kecamatan and 167 villages of Sukoharjo; idempotent. Returns rows added."""
    added = 0
    have_d = set(session.scalars(select(District.code)))
    for d in regions.districts():
        if d.code not in have_d:
            session.add(District(code=d.code, name=d.name))
            added += 1
    session.flush()
    have_v = set(session.scalars(select(Village.code)))
    for v in regions.villages():
        if v.code not in have_v:
            session.add(
                Village(
                    code=v.code,
                    name=v.name,
                    kind=v.kind,
                    district_code=v.district_code,
                    postal_code=v.postal_code,
                    address=f"Jl. Raya {v.name}, Kec. {v.district_name}, Sukoharjo",
                )
            )
            added += 1
    session.flush()
    return added


def enroll_signer(
    session: Session, keys_dir: Path, user: User, passphrase: str, *, by: Actor
) -> None:
    """Issue a certificate for a signer (a head, or a sekdes/acting head: their own title goes
    in the certificate) and store its passphrase-encrypted PKCS#12. Refused for a second head
    of a village (engine.people.signers.check_enrollable); recorded in the public signer registry
    and the audit log as done `by` that person."""
    if len(passphrase) < MIN_PASSWORD:
        message = f"Minimal {MIN_PASSWORD} karakter."
        raise InvalidInput(
            f"Sertifikat belum diterbitkan: {message.lower()}", {"passphrase": message}
        )
    village = signers.check_enrollable(session, user)
    bundle = issue_signer(
        keys_dir,
        username=user.username,
        full_name=user.full_name,
        title=own_title(user.role, village),
        village=f"{village.kind_label.title()} {village.name}",
        passphrase=passphrase,
    )
    user.signer_p12 = bundle.p12
    user.signer_cert_pem = bundle.cert_pem.decode()
    user.signer_not_after = bundle.not_after
    user.signer_serial = format(bundle.serial, "x")
    user.signer_hsm_label = None  # the new PKCS#12 replaces a key on the token
    session.flush()
    signers.record_issued(
        session, by, user, x509.load_pem_x509_certificate(bundle.cert_pem), "pkcs12"
    )


def enroll_hsm(
    session: Session, settings: Settings, user: User, pin: str, *, by: Actor, renewal: bool = False
) -> None:
    """Generate a signer's key on the PKCS#11 token (settings.pkcs11_module / pkcs11_token)
    under the label = username, certify it with the issuing CA, and record the certificate;
    from then on the signer signs with the token PIN (the PKCS#12, if any, is dropped).
    The same rules, registry row and audit event as enroll_signer. A ``renewal`` puts the new
    key under a label of its own (username.YYYYmmddHHMMSS) and destroys the key it replaces."""
    village = signers.check_enrollable(session, user)
    if not settings.pkcs11_module or not settings.pkcs11_token:
        raise InvalidInput(
            "Token HSM belum diatur: isi SURATDESA_PKCS11_MODULE dan SURATDESA_PKCS11_TOKEN."
        )
    from engine.trust.hsm import enroll_hsm_signer  # python-pkcs11 only where a token is used

    label, old_label = user.username, None
    if renewal:
        label = f"{user.username}.{datetime.now(UTC):%Y%m%d%H%M%S}"
        old_label = user.signer_hsm_label
    cert = enroll_hsm_signer(
        settings.pkcs11_module,
        settings.pkcs11_token,
        label,
        pin,
        keys_dir=settings.keys_dir,
        username=user.username,
        full_name=user.full_name,
        title=own_title(user.role, village),
        village=f"{village.kind_label.title()} {village.name}",
        retire_label=old_label,
    )
    user.signer_p12 = None
    user.signer_cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    user.signer_not_after = cert.not_valid_after_utc
    user.signer_serial = format(cert.serial_number, "x")
    user.signer_hsm_label = label
    session.flush()
    signers.record_issued(session, by, user, cert, "hsm")


# Clearly synthetic people: every family name is "Contoh" (Indonesian for "example").
_MEN = ["Budi", "Agus", "Slamet", "Joko", "Bambang", "Hadi", "Eko", "Wahyu", "Teguh", "Sigit"]
_WOMEN = ["Siti", "Sri", "Endang", "Wulan", "Rina", "Dewi", "Tri", "Yuni", "Ratna", "Lestari"]
_JOBS = ["Petani", "Wiraswasta", "Karyawan Swasta", "Guru", "Pedagang", "Mengurus Rumah Tangga"]
DEMO_VILLAGES = ("33.11.01.2001", "33.11.04.1001")
_STAFF_NAMES = (
    ("Rina Contoh", "Agus Contoh", "Dwi Contoh", "Hartono Contoh"),
    ("Yuni Contoh", "Slamet Contoh", "Ratna Contoh", "Sri Wahyuni Contoh"),
)  # Desa Grogol (Weru), Kelurahan Kenep
DEMO_PASSWORD = "demo12345"
DEMO_PASSPHRASE = "ttd-demo-2026"
DEMO_ACTOR = Actor.system("system:demo")  # who the demo seed's audit events name


def demo_residents(village: Village, count: int, *, seed: int) -> list[Resident]:
    rnd = random.Random(seed)
    prefix = village.district_code.replace(".", "")
    people = []
    for serial in range(1, count + 1):
        sex = "L" if serial % 2 else "P"
        born = date(rnd.randint(1950, 2005), rnd.randint(1, 12), rnd.randint(1, 28))
        first = rnd.choice(_MEN if sex == "L" else _WOMEN)
        people.append(
            Resident(
                nik=make_nik(prefix, born, sex, 9000 + serial),
                kk=prefix + f"{seed % 100:02d}0101{serial:04d}",
                name=f"{first} Contoh {serial}",
                birth_place="Sukoharjo",
                birth_date=born,
                sex=sex,
                religion="Islam",
                marital_status="Kawin" if born.year < 1995 else "Belum Kawin",
                occupation=rnd.choice(_JOBS),
                address=f"Dusun Contoh {serial % 5 + 1}",
                rt=f"{serial % 7 + 1:03d}",
                rw=f"{serial % 3 + 1:03d}",
                village_code=village.code,
                alive=True,
            )
        )
    return people


@dataclass
class DemoLogins:
    rows: list[tuple[str, str, str, str]] = field(
        default_factory=list
    )  # user, role, village, token
    sample_niks: dict[str, list[str]] = field(default_factory=dict)
    # village code -> (NIK, No. KK, date of birth) of one resident, to try /warga/ with
    sample_citizens: dict[str, tuple[str, str, str]] = field(default_factory=dict)


def seed_demo(session: Session, keys_dir: Path, *, public_url: str | None = None) -> DemoLogins:
    """Demo villages, staff of each role, a signer key per head and per sekdes (who signs
    "a.n." where a workflow allows it), and synthetic residents.
    Idempotent; every run prints fresh API tokens (older ones stay valid). `public_url` is
    written into a new key folder so certificates name the portal's CRL and OCSP addresses."""
    init_pki(keys_dir, public_url=public_url)
    seed_regions(session)
    logins = DemoLogins()
    for index, code in enumerate(DEMO_VILLAGES):
        village = session.get(Village, code)
        slug = village.name.lower()
        if not (village.phone or village.email or village.website):  # the kop's contact lines
            village.phone = f"(0271) 59{3100 + index * 7}"
            village.email = f"{village.kind}.{slug}@sukoharjo.example"
            village.website = f"https://{slug}.sukoharjo.example"
        if session.scalar(select(Resident.id).where(Resident.village_code == code)) is None:
            session.add_all(demo_residents(village, 20, seed=index + 1))
        staff = list(zip(("operator", "kasi", "sekdes", "head"), _STAFF_NAMES[index], strict=True))
        for role, name in staff:
            username = f"{role}.{slug}"
            user = session.scalar(select(User).where(User.username == username))
            if user is None:
                nip = (
                    "197001012000031001" if role == "head" and village.kind == "kelurahan" else None
                )
                user = create_user(
                    session,
                    by=DEMO_ACTOR,
                    username=username,
                    full_name=name,
                    role=role,
                    village_code=code,
                    nip=nip,
                    password=DEMO_PASSWORD,
                )
            has_key = user.signer_p12 is not None or user.signer_hsm_label is not None
            if role in ("head", "sekdes") and not has_key:
                enroll_signer(session, keys_dir, user, DEMO_PASSPHRASE, by=DEMO_ACTOR)
            logins.rows.append(
                (username, role, f"{village.kind_label} {village.name}", issue_token(session, user))
            )
        session.flush()
        logins.sample_niks[code] = list(
            session.scalars(
                select(Resident.nik)
                .where(Resident.village_code == code)
                .order_by(Resident.id)
                .limit(4)
            )
        )
        first = session.scalar(select(Resident).where(Resident.nik == logins.sample_niks[code][0]))
        logins.sample_citizens[code] = (first.nik, first.kk, f"{first.birth_date:%d-%m-%Y}")
    admin = session.scalar(select(User).where(User.username == "admin"))
    if admin is None:
        admin = create_user(
            session,
            by=DEMO_ACTOR,
            username="admin",
            full_name="Admin Kabupaten",
            role="admin",
            village_code=None,
            password=DEMO_PASSWORD,
        )
    logins.rows.append(("admin", "admin", "Kabupaten Sukoharjo", issue_token(session, admin)))
    return logins
