"""The contact sheet of a survey (farm.jobs.faces_sheet) and the table's JSON
(farm.jobs.faces_output): composed from made-up people, no video."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

from farm.faces.people import Person, Sample, Sighting
from farm.jobs import faces_sheet as fs
from farm.jobs.faces_output import faces_file, table_json
from farm.jobs.preview_sheet import PANEL_BGR

COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]


def crop(colour, w: int = 60, h: int = 80) -> bytes:
    return cv2.imencode(".png", np.full((h, w, 3), colour, np.uint8))[1].tobytes()


def person(number: int, colour, sightings: int) -> Person:
    seen = [Sighting(n, 10 * n, (0, 0, 50, 50), 0.9, np.full(512, number, np.float32), crop(colour))
            for n in range(sightings)]
    return Person(number, seen, np.full(512, number, np.float32), [(0, 10 * sightings)], float(sightings), 0.0)


def survey(people) -> SimpleNamespace:
    samples = [Sample(10 * n, float(n), 10 * n + 10, float(n + 1)) for n in range(10)]
    return SimpleNamespace(video=Path("/v/talk.mp4"), width=640, height=360, frame_count=100, duration_s=10.0,
                           every_s=1.0, threshold=0.5, samples=samples, people=people,
                           faces_seen=sum(len(p.sightings) for p in people), options={"every": 1.0},
                           label={"pack": "demo", "demo": True, "models": {"recognizer": {"name": "r", "sha256": "x"}}},
                           warning=None if people else "no face found")


def test_one_row_per_person_with_crops_spread_over_the_row():
    people = [person(1, COLOURS[0], 8), person(2, COLOURS[1], 2)]
    sheet = fs.compose_sheet(survey(people))
    assert sheet.width == fs.SHEET_WIDTH and sheet.rows == 2
    assert sheet.height == sheet.header_height + 2 * fs.ROW_PX
    for row, (p, colour) in enumerate(zip(people, COLOURS)):
        top = sheet.header_height + row * fs.ROW_PX + fs.GAP_PX
        shown = min(len(p.sightings), fs.CROPS_PER_ROW)
        for n in range(fs.CROPS_PER_ROW):
            x = fs.LABEL_PX + n * (fs.CELL_PX + fs.GAP_PX)
            centre = tuple(int(v) for v in sheet.image[top + fs.CELL_PX // 2, x + fs.CELL_PX // 2])
            assert centre == (colour if n < shown else PANEL_BGR), (row, n, centre)
        label = sheet.image[top:top + fs.CELL_PX, :fs.LABEL_PX]
        assert (label > 200).any()   # the person's number and time are written there


def test_a_survey_without_people_is_the_header_alone():
    sheet = fs.compose_sheet(survey([]))
    assert sheet.rows == 0 and sheet.height == sheet.header_height and sheet.width == fs.SHEET_WIDTH
    assert "no face found" in fs.header_lines(survey([]))[0]


def test_the_table_and_faces_json_name_each_person_its_crop_and_embedding():
    people = [person(1, COLOURS[0], 4), person(2, COLOURS[1], 1)]
    s = survey(people)
    table = table_json(s, fs.compose_sheet(s), Path("/out/talk.faces"))
    assert [p["name"] for p in table["people"]] == ["person-1", "person-2"]
    assert table["people"][0]["crop"] == "/out/talk.faces/person-1.png" and table["sheet"] == "/out/talk.faces/sheet.png"
    assert table["people"][0]["frames"] == [[0, 40]] and table["people"][0]["share"] == 0.4
    assert "embedding" not in table["people"][0]
    data = faces_file(s)
    assert data["version"] == 1 and data["recognizer"] == {"name": "r", "sha256": "x"}
    assert data["people"][1]["crop"] == "person-2.png" and data["people"][1]["embedding"] == [2.0] * 512


def test_clock():
    assert (fs.clock(0), fs.clock(75.25), fs.clock(3725)) == ("0:00.0", "1:15.2", "1:02:05")
