"""Seed data for dashboard tests and screenshots: a year of responses with plans, regions and comments."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from survey_service.extensions import db
from survey_service.models import Person, Response
from survey_service.nps import category_for
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
