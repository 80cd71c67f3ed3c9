"""Generate realistic instrument output for Floe's tests and benchmarks.

A greenhouse-gas analyser writing one file every 15 minutes: ch4, co2, a packed
temperature, a 64-sample waveform per record, a 1 Hz high-frequency wind record
along its own unlimited dimension `hf_time`, static coordinates, global and
variable attributes. Formats: NetCDF-4 (netCDF4), NetCDF-4 via h5netcdf with the
newest HDF5 file format, NetCDF-3 classic / 64-bit offset, and Zarr v2/v3.

    python make_fixtures.py OUT --files 672 [--format nc4|h5netcdf|nc3|nc3-64|zarr2|zarr3]
"""

import argparse
import os
import time

import numpy as np

EPOCH = "seconds since 2024-01-01 00:00:00"
RECORDS = 90  # one record every 10 s
SAMPLES = 64
HF = 900  # 1 Hz
FILE_SECONDS = 900


def file_arrays(i, records=RECORDS, hf=HF, seed=0):
    rng = np.random.default_rng(seed * 100003 + i)
    t0 = i * FILE_SECONDS
    time = t0 + np.arange(records) * (FILE_SECONDS / records)
    ch4 = (1.9 + 0.01 * rng.standard_normal(records)).astype("f4")
    ch4[rng.integers(0, records)] = -9999.0  # a dropout: the fill value
    co2 = 420.0 + rng.standard_normal(records)
    temp_c = 15.0 + 5 * np.sin(time / 86400 * 2 * np.pi) + 0.1 * rng.standard_normal(records)
    temp_packed = np.round((temp_c + 273.15 - 273.15) / 0.01).astype("i2")
    waveform = rng.standard_normal((records, SAMPLES)).astype("f4")
    hf_time = t0 + np.arange(hf) * (FILE_SECONDS / hf)
    wind = (3 + rng.standard_normal(hf)).astype("f4")
    status = np.array(["ok" if k % 7 else "cal" for k in range(records)], dtype=object)
    return dict(time=time, ch4=ch4, co2=co2, temp=temp_packed, waveform=waveform,
                hf_time=hf_time, wind=wind, status=status)


def to_units(seconds_since_2024, units):
    """Express instants given in seconds since 2024-01-01 in other CF units."""
    import cftime

    instants = cftime.num2date(seconds_since_2024, EPOCH, calendar="standard")
    return np.asarray(cftime.date2num(instants, units, calendar="standard"), dtype="f8")


def write_netcdf(path, i, fmt, a, extra_var=False, h5_engine=False):
    import netCDF4

    opts = a.get("options")
    with netCDF4.Dataset(path, "w", format=fmt) as ds:
        ds.title = "Floe test site greenhouse gas analyser"
        ds.institution = "Floe test lab"
        ds.history = f"file {i} written by make_fixtures.py"
        ds.Conventions = "CF-1.8"
        if opts is not None and opts.firmware:
            ds.firmware = opts.firmware
        ds.createDimension("time", None)
        if fmt == "NETCDF4":
            ds.createDimension("hf_time", None)
        else:
            ds.createDimension("hf_time", len(a["hf_time"]))
        ds.createDimension("sample", SAMPLES)
        nlev = opts.levels if opts else 3
        ds.createDimension("level", nlev)
        z = dict(zlib=True, complevel=4, shuffle=True) if fmt == "NETCDF4" else {}
        units = opts.time_units if opts else EPOCH
        t = ds.createVariable("time", "f8", ("time",), **z)
        t.units = units
        t.calendar = "standard"
        t.standard_name = "time"
        tv = to_units(a["time"] + (opts.time_shift if opts else 0.0), units)
        if opts is not None and opts.duplicate_time:
            tv[1] = tv[0]
        t[:] = tv
        v = ds.createVariable("ch4", "f4", ("time",), fill_value=np.float32(-9999.0), **z)
        v.units = "ppm"
        v.long_name = "methane mole fraction"
        v[:] = a["ch4"]
        v = ds.createVariable("co2", opts.co2_dtype if opts else "f8", ("time",), **z)
        v.units = "ppm"
        co2 = np.array(a["co2"])
        if opts is not None and opts.spike is not None:
            co2[5] = opts.spike
        if opts is not None and opts.valid_range:
            v.valid_range = np.array([300.0, 600.0])
        v[:] = co2
        v = ds.createVariable("temperature", "i2", ("time",), fill_value=np.int16(-32767), **z)
        v.scale_factor = np.float32(0.01)
        v.add_offset = np.float32(273.15)
        v.units = "K"
        if opts is not None and opts.valid_range:
            # packed units: 1000..2500 * 0.01 + 273.15 K, 10 to 25 degC (the raw
            # values, 1500 or so, are outside the decoded range and inside this)
            v.valid_range = np.array([1000, 2500], dtype="i2")
        v.set_auto_maskandscale(False)
        v[:] = a["temp"]
        v = ds.createVariable("waveform", "f4", ("time", "sample"), **z)
        v.units = "V"
        v[:] = a["waveform"]
        v = ds.createVariable("level", "f4", ("level",))
        v.units = "m"
        v[:] = (2.0 + 10.0 * np.arange(nlev)).astype("f4")
        # a NetCDF char array: the operating mode per record, 8 characters
        ds.createDimension("mode_strlen", 8)
        m = ds.createVariable("mode", "S1", ("time", "mode_strlen"))
        modes = np.array([("sample" if k % 7 else "zero") for k in range(len(a["time"]))], dtype="S8")
        m[:] = netCDF4.stringtochar(modes)
        v = ds.createVariable("lat", "f8", ())
        v.units = "degrees_north"
        v[...] = 47.5
        if fmt == "NETCDF4":
            h = ds.createVariable("hf_time", "f8", ("hf_time",), **z)
            h.units = EPOCH
            h.calendar = "standard"
            h[:] = a["hf_time"]
            w = ds.createVariable("wind", "f4", ("hf_time",), **z)
            w.units = "m s-1"
            w[:] = a["wind"]
            s = ds.createVariable("status", str, ("time",))
            s[:] = a["status"]
            g = ds.createGroup("engineering")
            g.createDimension("time", None)
            p = g.createVariable("pump_current", "f4", ("time",))
            p.units = "A"
            p[:] = np.full(len(a["time"]), 0.5, dtype="f4")
        if extra_var:
            v = ds.createVariable("n2o", "f4", ("time",), fill_value=np.float32(np.nan))
            v.units = "ppb"
            v[:] = np.full(len(a["time"]), 330.0, dtype="f4")
        hold = opts.hold if opts else 0.0
        if hold > 0:
            # an instrument still at work: the file stays open for writing, and the
            # second half of the records is written again (same values) in steps
            ds.sync()
            print("READY", flush=True)
            n = len(a["time"])
            steps = 4
            for k in range(steps):
                time.sleep(hold / steps)
                lo, hi = n // 2 + k * (n - n // 2) // steps, n // 2 + (k + 1) * (n - n // 2) // steps
                ds["ch4"][lo:hi] = a["ch4"][lo:hi]
                ds.sync()


def write_h5netcdf(path, i, a):
    """NetCDF-4 through h5netcdf with libver='latest': the newest HDF5 file format."""
    import h5netcdf

    with h5netcdf.File(path, "w", libver="latest") as ds:
        ds.attrs["title"] = "Floe test site greenhouse gas analyser"
        ds.dimensions = {"time": None, "sample": SAMPLES}
        t = ds.create_variable("time", ("time",), "f8", chunks=(RECORDS,))
        ds.resize_dimension("time", len(a["time"]))
        t[:] = a["time"]
        t.attrs["units"] = EPOCH
        t.attrs["calendar"] = "standard"
        v = ds.create_variable("ch4", ("time",), "f4", fillvalue=np.float32(-9999.0), compression="gzip", chunks=(RECORDS,))
        v[:] = a["ch4"]
        v.attrs["units"] = "ppm"
        v = ds.create_variable("waveform", ("time", "sample"), "f4", chunks=(RECORDS, SAMPLES))
        v[:] = a["waveform"]


def write_zarr(path, i, a, zarr_format):
    import xarray as xr

    ds = xr.Dataset(
        {
            "ch4": ("time", a["ch4"], {"units": "ppm"}),
            "co2": ("time", a["co2"], {"units": "ppm"}),
            "waveform": (("time", "sample"), a["waveform"], {"units": "V"}),
        },
        coords={"time": ("time", a["time"], {"units": EPOCH, "calendar": "standard"})},
        attrs={"title": "Floe zarr fixture"},
    )
    ds["ch4"].encoding["_FillValue"] = np.float32(-9999.0)
    ds.to_zarr(path, mode="w", zarr_format=zarr_format, consolidated=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--files", type=int, default=672)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--format", default="nc4")
    ap.add_argument("--records", type=int, default=RECORDS)
    ap.add_argument("--hf", type=int, default=HF)
    ap.add_argument("--extra-var-from", type=int, default=-1,
                    help="files from this index on carry a new variable n2o")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-units", default=EPOCH,
                    help="write time in these units (values converted, same instants)")
    ap.add_argument("--co2-dtype", default="f8")
    ap.add_argument("--levels", type=int, default=3)
    ap.add_argument("--duplicate-time", action="store_true")
    ap.add_argument("--name-prefix", default="site_")
    ap.add_argument("--firmware", default=None, help="a global attribute `firmware` (NetCDF)")
    ap.add_argument("--time-shift", type=float, default=0.0,
                    help="seconds added to every record time (-10: a file's first record repeats the last of the one before)")
    ap.add_argument("--valid-range", action="store_true",
                    help="valid ranges as instruments write them: co2's in its own units (floats), "
                         "the packed temperature's in packed units (int16: 10 to 25 degC)")
    ap.add_argument("--spike", type=float, default=None,
                    help="one co2 value replaced by this (a spike outside the valid range)")
    ap.add_argument("--hold", type=float, default=0.0,
                    help="keep each NetCDF-4/3 file open this many seconds, writing to it, before closing")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for i in range(args.start, args.start + args.files):
        a = file_arrays(i, args.records, args.hf, args.seed)
        a["options"] = args
        day, q = divmod(i, 96)
        stem = f"{args.name_prefix}2024{1 + day // 31:02d}{1 + day % 31:02d}_{q // 4:02d}{15 * (q % 4):02d}"
        extra = 0 <= args.extra_var_from <= i
        if args.format == "nc4":
            write_netcdf(os.path.join(args.out, stem + ".nc"), i, "NETCDF4", a, extra)
        elif args.format == "nc3":
            write_netcdf(os.path.join(args.out, stem + ".nc"), i, "NETCDF3_CLASSIC", a, extra)
        elif args.format == "nc3-64":
            write_netcdf(os.path.join(args.out, stem + ".nc"), i, "NETCDF3_64BIT_OFFSET", a, extra)
        elif args.format == "h5netcdf":
            write_h5netcdf(os.path.join(args.out, stem + ".nc"), i, a)
        elif args.format in ("zarr2", "zarr3"):
            write_zarr(os.path.join(args.out, stem + ".zarr"), i, a, int(args.format[-1]))
        else:
            raise SystemExit(f"unknown format {args.format}")


if __name__ == "__main__":
    main()
