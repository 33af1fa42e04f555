"""Letter types as data: one YAML file per workflow, loaded into an immutable, versioned spec.

File format (see ``workflows/*.yaml`` and :func:`workflow_json_schema`)::

    id: surat-keterangan-kematian        # lowercase slug, unique across files
    version: 1                           # integer; bump on every change
    title: Surat Keterangan Kematian
    classification: "474.3"              # quoted: 470.10 unquoted would be the float 470.1
    number_format: "{classification}/{seq:03}/{village_code}/{month_roman}/{year}"
    subjects:                            # people the letter is about, looked up by NIK
      deceased: {label: Yang meninggal, alive: true}
      reporter: {label: Pelapor, required: false}
    fields:
      - {name: date_of_death, label: Tanggal meninggal, type: date, required: true,
         not_future: true}
    template: templates/kematian.html.j2 # relative to this file, must stay inside its folder
    initial: draft                       # optional; default: the first step
    steps:
      draft:   {role: operator, label: Isian petugas, actions: {submit: review}}
      review:  {role: sekdes, actions: {approve: signing, return: draft, reject: rejected}}
      signing: {role: head, actions: {sign: issued, return: review, reject: rejected},
                signers: {sekdes: a.n.}}   # optional: who else signs, on the head's behalf
    effects:
      issued: [{mark_deceased: deceased}]
    citizen_requestable: false           # optional; true: residents may ask online (/warga/)
    public_facts:                        # what the public page and the QR seal show
      - {label: Nama, from: subject:deceased.name}
      - {label: Tanggal meninggal, from: field:date_of_death}

``sample:`` (optional) maps field names to example values for the letter type editor's DRAFT
preview (engine.requests.letter_type_editor); each is checked like a typed value.

``public_facts`` (1 to 3) name where each fact comes from: ``field:<name>`` or
``subject:<role>.<attr>`` with attr one of name, nik, birth_date, birth_place, sex. Values are
formatted as the letter prints them (dates "28 November 2026"); a NIK is always masked. Without
``public_facts`` the page and seal show the first subject's name.

Rules beyond the shape: ``sign`` leads to ``issued`` and nothing else does; ``reject`` leads to
``rejected``; every other action leads to a step. ``cancelled`` is reached only through the
built-in cancel (an operator, before issue), never declared. Every step is reachable from the
initial step, every step can reach an end, and some path reaches ``issued``. ``signers`` is only
allowed on a head's step with a ``sign`` action: it names the staff roles that may sign that step
on the head's behalf, ``a.n.`` (sekdes) or ``u.b.`` (kasi), printed before the head's title.

``citizen_requestable: true`` opens the letter type to residents (engine.citizens): a resident
names only themselves (the first subject; any other subject must be optional) and the request
enters the initial step, which must be the operator's: the operator completes or corrects it,
then the chain runs as for a counter request.

Problems are reported as ``file:line: reason`` with the reason in Bahasa Indonesia, since the
regency admin who edits workflows reads them.
"""

from engine.requests.workflows.json_schema import workflow_json_schema
from engine.requests.workflows.loader import (
    load_workflow,
    load_workflows,
    template_bundle,
    workflow_problems,
)
from engine.requests.workflows.spec import (
    TERMINAL_STATES,
    FieldErrors,
    FieldSpec,
    PublicFactSpec,
    StepSpec,
    SubjectSpec,
    WorkflowError,
    WorkflowErrors,
    WorkflowSpec,
    format_number,
)

__all__ = [
    "TERMINAL_STATES",
    "FieldErrors",
    "FieldSpec",
    "PublicFactSpec",
    "StepSpec",
    "SubjectSpec",
    "WorkflowError",
    "WorkflowErrors",
    "WorkflowSpec",
    "format_number",
    "load_workflow",
    "load_workflows",
    "template_bundle",
    "workflow_json_schema",
    "workflow_problems",
]
