"""Seed data for dashboard tests and screenshots: a year of responses with plans, regions and comments."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from survey_service.core.nps import category_for
from survey_service.extensions import db
from survey_service.models import Person, Response
from survey_service.services.projects import default_survey

COMMENTS = {
    "promoter": [
        "Support answered in minutes, brilliant.",
        "The reports save me hours every week.",
        "Love the new editor!",
    ],
    "passive": ["Good, but the mobile app is slow.", "Does the job. Pricing is a bit high.", "Fine overall."],
    "detractor": [
        "Exports keep timing out.",
        "Too expensive for what we use.",
        '=HYPERLINK("http://evil") <script>alert(1)</script>',
    ],
}


def seed_responses(project_id: int, count: int = 400, *, end: datetime | None = None, seed: int = 7) -> None:
    """Insert count responses spread over the 12 months before end, trending upwards."""
    rng = random.Random(seed)
    end = end or datetime.now(UTC)
    survey_id = default_survey(project_id).id
    plans, regions = ["free", "pro", "enterprise"], ["eu", "us", "apac"]
    people = []
    for i in range(count // 2):
        person = Person(
            project_id=project_id,
            email=f"user{i}@example.com",
            name=f"User {i}",
            properties={"plan": plans[i % 3], "region": regions[i % 3 - 1]},
        )
        people.append(person)
    db.session.add_all(people)
    db.session.flush()
    for i in range(count):
        age = rng.random() * 360
        person = people[i % len(people)]
        # Newer answers lean happier; enterprise happier than free.
        bias = (360 - age) / 360 * 2 + (1 if person.properties["plan"] == "enterprise" else 0)
        score = max(0, min(10, round(rng.gauss(6.5 + bias, 2.2))))
        category = category_for(score)
        comment = rng.choice(COMMENTS[category]) if rng.random() < 0.35 else None
        db.session.add(
            Response(
                project_id=project_id,
                survey_id=survey_id,
                person_id=person.id,
                score=score,
                category=category,
                comment=comment,
                channel=rng.choice(["email", "in_app"]),
                properties=dict(person.properties),
                created_at=end - timedelta(days=age),
            )
        )
    db.session.commit()


# Responses from two surveys, four channels and two trigger rules, for the filter bar's tests:
# (who, plan, survey, rule, channel, score, comment). Figures counted by hand:
#   all 7: promoters 10, 9, 9; passive 7; detractors 2, 3, 5            -> NPS (3 - 3) / 7 = 0
#   survey "NPS" 4: 10, 9 | 7 | 2                                       -> (2 - 1) / 4 = +25
#   survey "Onboarding" 3: 9 | - | 3, 5                                 -> (1 - 2) / 3 = -33
#   channel email (rule ticket) 2: 9 | 2                                -> 0;  channel api 2: 10 | 7 -> +50
#   rule signup / event type signup 2: 3, 5                             -> -100
ORIGINS: list[tuple[str, str, str, str | None, str, int, str | None]] = [
    ("p1", "pro", "NPS", None, "api", 10, "nps-api-promoter"),
    ("p2", "free", "NPS", "ticket", "email", 9, "ticket-happy"),
    ("p3", "pro", "NPS", "ticket", "email", 2, "ticket-angry"),
    ("p4", "free", "NPS", None, "api", 7, None),
    ("p5", "free", "Onboarding", "signup", "in_app", 3, "onboarding-too-hard"),
    ("p6", "pro", "Onboarding", "signup", "in_app", 5, None),
    ("p7", "pro", "Onboarding", None, "link", 9, "onboarding-loved-it"),
]


def seed_origins(project_id: int, *, answered: datetime | None = None) -> dict[str, int]:
    """A second survey, two trigger rules with their events and requests, and the ORIGINS answers.

    Returns the ids: surveys "NPS" and "Onboarding", rules "ticket" and "signup".
    """
    from survey_service.models import Event, Survey, SurveyRequest, TriggerRule
    from survey_service.services.responses import record_response

    answered = answered or datetime.now(UTC) - timedelta(days=5)  # a closed day: rollups may hold it
    nps_survey = default_survey(project_id)
    onboarding = Survey(
        project_id=project_id, kind="nps", name="Onboarding", product_name="Acme", question="How likely…?"
    )
    db.session.add(onboarding)
    db.session.flush()
    surveys = {"NPS": nps_survey.id, "Onboarding": onboarding.id}
    rules = {
        "ticket": TriggerRule(
            project_id=project_id, event_type="ticket.closed", survey_id=nps_survey.id, channel="email"
        ),
        "signup": TriggerRule(
            project_id=project_id, event_type="signup", survey_id=onboarding.id, channel="in_app"
        ),
    }
    db.session.add_all(rules.values())
    db.session.flush()
    requests: list[SurveyRequest | None] = []
    for who, plan, survey, rule_name, channel, _, _ in ORIGINS:
        person = Person(
            project_id=project_id, external_id=who, email=f"{who}@origins.test", properties={"plan": plan}
        )
        db.session.add(person)
        db.session.flush()
        if channel == "api":
            requests.append(None)
            continue
        rule, event = rules.get(rule_name or ""), None
        if rule is not None:
            event = Event(
                project_id=project_id,
                external_id=f"ev-{who}",
                type=rule.event_type,
                person_id=person.id,
                occurred_at=answered - timedelta(hours=2),
            )
            db.session.add(event)
            db.session.flush()
        request = SurveyRequest(
            project_id=project_id,
            survey_id=surveys[survey],
            person_id=person.id,
            channel=channel,
            status="sent",
            sent_at=answered - timedelta(hours=1),
            trigger_id=rule.id if rule is not None else None,
            event_id=event.id if event is not None else None,
        )
        db.session.add(request)
        requests.append(request)
    db.session.commit()
    for made, (who, _, _, _, channel, score, comment) in zip(requests, ORIGINS, strict=True):
        record_response(
            project_id,
            {"external_id": who},
            score,
            comment,
            channel=channel,
            created_at=answered,
            request=made,
        )
    return {**surveys, **{name: rule.id for name, rule in rules.items()}}
