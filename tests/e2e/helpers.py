"""Expected rows computed from the records in Kafka, and rows read back from the store."""
import calendar
import datetime
import json

from conftest import ts_ms


def iso_ms(s):
    dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ")
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000


def expected_vehicles(messages):
    rows = {}
    for m in messages:
        d = json.loads(m.value())
        ts = iso_ms(d["Timestamp"])
        key = (d["id"], ts // 86400000, ts)
        assert key not in rows, "simulator produced a duplicate key %r" % (key,)
        rows[key] = (d["Adresse"], d["Mileage"], d["Fuel_level"], d["Speed"], d["Longitude"], d["Latitude"])
    return rows


def stored_vehicles(session):
    rows = {}
    for r in session.execute("SELECT device_id, day, ts, address, mileage, fuel_level, speed, longitude, latitude "
                             "FROM iot.vehicle_readings"):
        key = (r.device_id, r.day.days_from_epoch, ts_ms(r.ts))
        assert key not in rows, "duplicate row %r" % (key,)
        rows[key] = (r.address, r.mileage, r.fuel_level, r.speed, r.longitude, r.latitude)
    return rows
