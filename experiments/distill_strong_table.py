#!/usr/bin/env python3
"""Tables for experiments/distill_strong.sh (reads the students' result.json files).

  choose DIR CANDIDATE...   prints the candidate with the best validation score:
                            mean(student image->image mAP cos, student image -> teacher text
                            mAP cos) on the teacher's validation split (seen classes).
  table OUT RESULTS CHOSEN STUDENT SEEDS "SINGLES" "SIZES"
                            writes RESULTS/summary.{md,json}: the method comparison and the
                            student-size sweep, mean +- std over the teacher seeds (test set;
                            retrieval split by seen- and unseen-class queries), with the
                            validation score each row was judged by.
"""
import json
import os
import statistics
import sys


def row_name(method):
    r = method
    for ch in "=,+":
        r = r.replace(ch, "_")
    return r.replace(":", "-")


def load(path):
    with open(path) as f:
        return json.load(f)


def get(j, *path):
    for k in path:
        if not isinstance(j, dict) or k not in j:
            return None
        j = j[k]
    return j


def validation_score(result):
    v = get(result, "student", "validation", "retrieval")
    if v is None:
        raise SystemExit("result without validation figures (rerun mmkt distill with this build)")
    return 0.5 * (v["image->image"]["cosine"]["mAP"] + v["image->text"]["cosine"]["mAP"])


def choose(directory, candidates):
    scored = []
    for c in candidates:
        r = load(os.path.join(directory, row_name(c), "result.json"))
        scored.append((validation_score(r), c))
    for s, c in sorted(scored, reverse=True):
        print(f"  validation score {s:.4f}  {c}", file=sys.stderr)
    print(max(scored)[1])


# Test-set figures of one evaluated encoder (student or teacher) of a result.json.
def figures(e):
    f = {}
    for task, key in [("image->image", "i->i"), ("image->text", "i->t"), ("text->image", "t->i")]:
        r = get(e, "retrieval", task, "cosine")
        if r is None:
            continue
        f[f"{key} all"] = r["mAP"]
        for g in ["seen", "unseen"]:
            m = get(r, "groups", g, "mAP")
            if m is not None:
                f[f"{key} {g}"] = m
    for method in ["dap", "text", "generated"]:
        z = get(e, "zeroshot", method)
        if isinstance(z, dict) and "zsl" in z:
            f[f"ZSL {method}"] = z["zsl"]
            f[f"GZSL H {method}"] = z["H"]
    p = get(e, "probe", "accuracy")
    if p is not None:
        f["probe"] = p
    f["params"] = e["parameters"]
    f["images/s"] = e["images_per_second"]
    return f


def mean_std(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def cell(values, digits=3):
    m, s = mean_std(values)
    if m is None:
        return "-"
    return f"{m:.{digits}f} +- {s:.{digits}f}"


def table(out, results, chosen, student, seeds, singles, sizes):
    seeds = list(range(int(seeds)))
    teacher = {}  # seed -> teacher figures (the baseline row evaluated the teacher fully)
    for s in seeds:
        teacher[s] = figures(load(os.path.join(out, f"s{s}", "baseline", "result.json"))["teacher"])

    def rows_for(row):
        rs = {}
        for s in seeds:
            p = os.path.join(out, f"s{s}", row, "result.json")
            if os.path.exists(p):
                rs[s] = load(p)
        return rs

    cols = ["i->i seen", "i->i unseen", "i->i all", "i->t seen", "i->t unseen", "t->i seen",
            "ZSL dap", "probe"]
    summary = {"chosen": chosen, "student": student, "seeds": seeds, "teacher": {}, "methods": {},
               "sizes": {}}
    md = []
    md.append(f"Teacher: {len(seeds)} seeds; student `{student}`; method chosen on validation: "
              f"`{chosen}`. Test set, cosine mAP, mean +- std over seeds ('seen': seen-class "
              "queries over the whole test set); 'val' is the validation score the choice used "
              "(mean of image->image and image->teacher-text mAP on the validation split); "
              "images/s: median over seeds; speed-up: each run's student against the teacher "
              "measured in the same process, median over seeds; i->t is student image -> "
              "teacher text, t->i teacher text -> student image.\n")
    header = "| model | params | % teacher | images/s | speed-up | val | " + " | ".join(cols) + \
        " | keeps i->i seen | keeps i->t seen |"
    md.append(header)
    md.append("| --- | ---: | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in cols) +
              " | ---: | ---: |")
    t_params = teacher[seeds[0]]["params"]
    t_rate = [teacher[s]["images/s"] for s in seeds]
    summary["teacher"] = {c: mean_std([teacher[s].get(c) for s in seeds]) for c in cols}
    md.append("| teacher (image encoder) | %d | 100.0 | %.0f | 1.0x | - | %s | 100%% | 100%% |" % (
        t_params, statistics.median(t_rate),
        " | ".join(cell([teacher[s].get(c) for s in seeds]) for c in cols)))

    def add_row(label, rs, key):
        if not rs:
            return
        f = {s: figures(r["student"]) for s, r in rs.items()}
        vals = [validation_score(r) for r in rs.values()]
        params = next(iter(f.values()))["params"]
        # The speed-up each run measured side by side with the teacher in its own process (the
        # only ratio that holds on a shared machine), median over seeds.
        speed = [rs[s]["student"]["speedup"] for s in f]
        rate = [f[s]["images/s"] for s in f]
        keep_ii = [f[s]["i->i seen"] / teacher[s]["i->i seen"] for s in f]
        keep_it = [f[s]["i->t seen"] / teacher[s]["i->t seen"] for s in f]
        entry = {c: mean_std([f[s].get(c) for s in f]) for c in cols}
        entry.update({"params": params, "percent_teacher": 100.0 * params / t_params,
                      "images_per_second_median": statistics.median(rate),
                      "speedup_median": statistics.median(speed),
                      "validation_score": mean_std(vals), "keeps_ii_seen": mean_std(keep_ii),
                      "keeps_it_seen": mean_std(keep_it), "seeds": sorted(f)})
        summary[key][label] = entry
        md.append("| %s | %d | %.1f | %.0f | %.1fx | %s | %s | %s | %s |" % (
            label, params, 100.0 * params / t_params, statistics.median(rate),
            statistics.median(speed), cell(vals),
            " | ".join(cell([f[s].get(c) for s in f]) for c in cols),
            cell([100 * k for k in keep_ii], 1) + "%", cell([100 * k for k in keep_it], 1) + "%"))

    for m in singles.split() + [chosen]:
        add_row(m if m != chosen else f"{m} (chosen)", rows_for(row_name(m)), "methods")
    md.append("")
    md.append(f"Student sizes, method `{chosen}` against the label-only baseline of the same "
              "size:\n")
    md.append(header)
    md.append("| --- | ---: | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in cols) +
              " | ---: | ---: |")
    for net in sizes.split():
        own = net == student  # the comparison's rows are this size's
        add_row(f"{net} {chosen}", rows_for(row_name(chosen) if own else "size_" + row_name(net)),
                "sizes")
        add_row(f"{net} baseline", rows_for("baseline" if own else "size_" + row_name(net) +
                                            "_baseline"), "sizes")
    text = "\n".join(md) + "\n"
    with open(os.path.join(results, "summary.md"), "w") as f:
        f.write(text)
    with open(os.path.join(results, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(text)


if __name__ == "__main__":
    if sys.argv[1] == "choose":
        choose(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "table":
        table(*sys.argv[2:9])
    else:
        raise SystemExit(__doc__)
