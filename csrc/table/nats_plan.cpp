// nb360._table.NatsPlan: NATS-Bench's per-query semantics answered straight from the mapped table.
//
// nb360.compat.nats answers nats_bench's calls (get_more_info, get_cost_info, ArchResults.get_metrics,
// ...) for one (dataset, hp). Building those result dicts in Python from single Table lookups costs
// more than nats_bench itself (~130 µs vs ~90 µs per get_more_info); here one C++ call reads every
// value the answer needs through RunView's bounds-checked accessors and builds the dict, so a query
// costs a few microseconds. The Python layer keeps what must stay in Python: argument handling, the
// `random` draws (so trajectories match nats_bench's bit for bit) and the error types.
//
// Semantics mirrored from nats_bench 1.8 (api_utils.ResultsCount / ArchResults, api_topology):
//   - a "set" is train or one eval split; its value at epoch e is (loss, accuracy, cur_time, all_time),
//     all_time the sum of the per-epoch times of epochs 0..e;
//   - a missing loss/accuracy/time fails the set (nats_bench raises KeyError or ValueError there;
//     get_more_info drops optional sets that fail);
//   - the seed mean is sum/len over the arch's recorded seeds in seed order; times are averaged only
//     when the first seed has them.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "table_file.h"

namespace py = pybind11;

namespace nb360 {

void bind_nats_lookups(py::module_& m);  // nats_lookups.cpp

namespace {

enum class TimeMode : int { kNone = 0, kMetric = 1, kUnrecorded = 2 };
enum class Fail : int { kOk = 0, kKey = 1, kValue = 2 };

struct SetSpec {
  std::int64_t loss, accuracy, time;  // metric indices (time -1 when the run has no such time)
  TimeMode time_mode;                 // kNone: times are None; kUnrecorded: asking for them fails the set
  bool train;
};

struct SetValues {
  double loss = 0, accuracy = 0, cur_time = 0, all_time = 0;
  bool has_time = false;
};

struct Output {  // one set of get_more_info's answer: which set, its key prefix, and whether a failure raises
  std::size_t set;
  py::object loss_key, accuracy_key, per_time_key, all_time_key;
  bool required;
};

py::object as_float(double v) { return py::reinterpret_steal<py::object>(PyFloat_FromDouble(v)); }

void set_item(py::dict& d, const py::object& key, const py::object& value) {
  if (PyDict_SetItem(d.ptr(), key.ptr(), value.ptr()) != 0) throw py::error_already_set();
}

class NatsPlan {
 public:
  NatsPlan(std::vector<std::shared_ptr<RunView>> views, std::vector<std::int64_t> seeds, std::int64_t epochs,
           std::vector<py::tuple> sets, std::vector<py::tuple> outputs, py::object comment_key,
           py::object comment, std::int64_t flops, std::int64_t params, std::int64_t latency,
           std::vector<py::tuple> eval_times)
      : views_(std::move(views)), seeds_(std::move(seeds)), epochs_(epochs), comment_key_(std::move(comment_key)),
        comment_(std::move(comment)), flops_(flops), params_(params), latency_(latency) {
    if (views_.empty() || views_.size() != seeds_.size()) throw py::value_error("NatsPlan: one view per seed");
    for (const auto& v : views_) {
      if (v->num_epochs() != epochs_) throw py::value_error("NatsPlan: the seeds' runs differ in epochs");
    }
    iota_.resize(static_cast<std::size_t>(epochs_));
    std::iota(iota_.begin(), iota_.end(), 0);
    values_.resize(iota_.size());
    present_.resize(iota_.size());
    for (const auto& t : sets) {
      sets_.push_back({t[0].cast<std::int64_t>(), t[1].cast<std::int64_t>(), t[2].cast<std::int64_t>(),
                       static_cast<TimeMode>(t[3].cast<int>()), t[4].cast<bool>()});
    }
    for (const auto& t : outputs) {
      const auto set = t[0].cast<std::size_t>();
      if (set >= sets_.size()) throw py::value_error("NatsPlan: output names an unknown set");
      const std::string prefix = t[1].cast<std::string>();
      outputs_.push_back({set, key(prefix + "-loss"), key(prefix + "-accuracy"), key(prefix + "-per-time"),
                          key(prefix + "-all-time"), t[2].cast<bool>()});
    }
    for (const auto& t : eval_times) {  // (name, time metric index or -1), in the records' eval_names order
      const std::string name = t[0].cast<std::string>();
      eval_times_.push_back({t[1].cast<std::int64_t>(), key("T-" + name + "@epoch"), key("T-" + name + "@total")});
    }
    for (const char* k : {"iepoch", "loss", "accuracy", "cur_time", "all_time", "flops", "params", "latency",
                          "T-train@epoch", "T-train@total"}) {
      keys_.push_back(key(k));
    }
    // The train set (index 0 by convention) supplies T-train@*.
    if (sets_.empty() || !sets_[0].train) throw py::value_error("NatsPlan: set 0 must be train");
  }

  // Positions (into the plan's seeds) of the seeds whose run records `arch`.
  std::vector<std::size_t> recorded_positions(std::int64_t arch) const {
    check_arch(arch);
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < views_.size(); ++i) {
      if (views_[i]->row(arch) >= 0) out.push_back(i);
    }
    return out;
  }

  py::list recorded(std::int64_t arch) const {
    py::list out;
    for (auto i : recorded_positions(arch)) out.append(seeds_[i]);
    return out;
  }

  // get_more_info: the outputs' sets at `iepoch`, one seed (seed_pos >= 0) or the seed mean (-1).
  py::dict more_info(std::int64_t arch, std::int64_t seed_pos, const py::object& iepoch) const {
    const std::int64_t e = epoch_of(iepoch);
    const auto positions = positions_for(arch, seed_pos);
    py::dict out;
    const double total = static_cast<double>(e + 1);
    bool first = true;
    for (const auto& o : outputs_) {
      SetValues v;
      std::string message;
      const Fail f = mean_set(positions, arch, sets_[o.set], e, v, message);
      if (f != Fail::kOk) {
        if (o.required) raise(f, message);
        continue;
      }
      set_item(out, o.loss_key, as_float(v.loss));
      set_item(out, o.accuracy_key, as_float(v.accuracy));
      set_item(out, o.per_time_key, v.has_time ? as_float(v.all_time / total) : py::none());
      set_item(out, o.all_time_key, v.has_time ? as_float(v.all_time) : py::none());
      if (first && !comment_.is_none()) set_item(out, comment_key_, comment_);
      first = false;
    }
    return out;
  }

  // ArchResults.get_metrics / ResultsCount.get_train|get_eval: {iepoch, loss, accuracy, cur_time, all_time}.
  py::dict metrics(std::int64_t arch, std::size_t set, std::int64_t seed_pos, const py::object& iepoch) const {
    if (set >= sets_.size()) throw py::value_error("NatsPlan.metrics: unknown set");
    const std::int64_t e = epoch_of(iepoch);
    const auto positions = positions_for(arch, seed_pos);
    SetValues v;
    std::string message;
    const Fail f = mean_set(positions, arch, sets_[set], e, v, message);
    if (f != Fail::kOk) raise(f, message);
    py::dict out;
    set_item(out, keys_[0], py::int_(e));
    set_item(out, keys_[1], as_float(v.loss));
    set_item(out, keys_[2], as_float(v.accuracy));
    set_item(out, keys_[3], v.has_time ? as_float(v.cur_time) : py::none());
    set_item(out, keys_[4], v.has_time ? as_float(v.all_time) : py::none());
    return out;
  }

  // ArchResults.get_compute_costs (seed_pos -1) or one seed's costs and ResultsCount.get_times (seed_pos >= 0).
  // times=false: only flops, params and latency (what show() prints).
  py::dict costs(std::int64_t arch, std::int64_t seed_pos, bool times) const {
    const auto positions = positions_for(arch, seed_pos);
    py::dict out;
    set_item(out, keys_[5], legacy_mean(positions, arch, flops_));
    set_item(out, keys_[6], legacy_mean(positions, arch, params_));
    set_item(out, keys_[7], latency_of(positions, arch));
    if (!times) return out;
    // T-train@*: mean and sum of the recorded per-epoch train times (ResultsCount.get_times).
    const SetSpec& train = sets_[0];
    times_item(out, positions, [&](const RunView& v, double& mean, double& sum) {
      if (train.time_mode != TimeMode::kMetric) return false;
      return series(v, arch, train.time, epochs_ - 1, false, mean, sum);
    }, keys_[8], keys_[9]);
    for (const auto& t : eval_times_) {  // T-<eval>@*: every epoch must be recorded, else None
      times_item(out, positions, [&](const RunView& v, double& mean, double& sum) {
        return t.metric >= 0 && series(v, arch, t.metric, epochs_ - 1, true, mean, sum);
      }, t.epoch_key, t.total_key);
    }
    return out;
  }

  py::object latency(std::int64_t arch) const { return latency_of(positions_for(arch, -1), arch); }

 private:
  struct EvalTime {
    std::int64_t metric;
    py::object epoch_key, total_key;
  };

  static py::object key(const std::string& s) {
    return py::reinterpret_steal<py::object>(PyUnicode_InternFromString(s.c_str()));
  }

  void check_arch(std::int64_t arch) const {
    if (arch < 0 || arch >= views_[0]->num_archs()) {
      throw py::index_error("arch index " + std::to_string(arch) + " is out of range [0, " +
                            std::to_string(views_[0]->num_archs()) + ")");
    }
  }

  std::int64_t epoch_of(const py::object& iepoch) const {
    if (iepoch.is_none()) return epochs_ - 1;
    const auto e = py::reinterpret_steal<py::object>(PyNumber_Index(iepoch.ptr()));
    if (!e) throw py::error_already_set();
    const std::int64_t value = e.cast<std::int64_t>();
    if (value < 0 || value >= epochs_) {
      throw py::value_error("invalid iepoch=" + std::to_string(value) + " < " + std::to_string(epochs_));
    }
    return value;
  }

  std::vector<std::size_t> positions_for(std::int64_t arch, std::int64_t seed_pos) const {
    if (seed_pos >= static_cast<std::int64_t>(views_.size())) throw py::value_error("NatsPlan: seed position");
    std::vector<std::size_t> positions;
    if (seed_pos >= 0) {
      check_arch(arch);
      if (views_[seed_pos]->row(arch) >= 0) positions.push_back(static_cast<std::size_t>(seed_pos));
    } else {
      positions = recorded_positions(arch);
    }
    if (positions.empty()) {
      throw py::key_error("arch " + std::to_string(arch) + " is not recorded for this dataset and hp" +
                          (seed_pos >= 0 ? " with seed " + std::to_string(seeds_[seed_pos]) : std::string()));
    }
    return positions;
  }

  [[noreturn]] static void raise(Fail f, const std::string& message) {
    if (f == Fail::kValue) throw py::value_error(message);
    throw py::key_error(message);
  }

  static bool one(const RunView& v, std::int64_t arch, std::int64_t metric, std::int64_t epoch, double& out) {
    float value;
    std::uint8_t present;
    if (v.gather(1, &arch, 0, &metric, 0, &epoch, 0, &value, &present, /*single=*/true) >= 0) {
      throw py::index_error("NatsPlan: metric or epoch out of range");
    }
    out = value;
    return present != 0;
  }

  // Mean and sum of a time metric over epochs 0..last; `all_required`: every epoch must be recorded
  // (else false), otherwise only the recorded ones count (and none recorded is false).
  bool series(const RunView& v, std::int64_t arch, std::int64_t metric, std::int64_t last, bool all_required,
              double& mean, double& sum) const {
    const std::int64_t n = last + 1;  // <= epochs_: the scratch buffers are big enough (the GIL is held)
    float* values = values_.data();
    std::uint8_t* present = present_.data();
    if (v.gather(n, &arch, 0, &metric, 0, iota_.data(), 1, values, present, /*single=*/true) >= 0) {
      throw py::index_error("NatsPlan: time metric out of range");
    }
    sum = 0;
    std::int64_t count = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      if (present[i]) {
        sum += static_cast<double>(values[i]);
        ++count;
      } else if (all_required) {
        return false;
      }
    }
    if (count == 0) return false;
    mean = sum / static_cast<double>(count);
    return true;
  }

  // One seed's set at epoch e, checked in nats_bench's order (times, then loss and accuracy) so a failing
  // required set raises the error type nats_bench raises.
  Fail one_set(const RunView& v, std::int64_t arch, const SetSpec& s, std::int64_t e, SetValues& out,
               std::string& message) const {
    if (s.time_mode == TimeMode::kUnrecorded) {
      message = "no time recorded for this set at epoch " + std::to_string(e);
      return Fail::kValue;
    }
    if (s.time_mode == TimeMode::kMetric) {
      if (!one(v, arch, s.time, e, out.cur_time)) {
        message = "the time at epoch " + std::to_string(e) + " is not recorded";
        return s.train ? Fail::kKey : Fail::kValue;
      }
      double mean;
      if (!series(v, arch, s.time, e, true, mean, out.all_time)) {
        message = "a time before epoch " + std::to_string(e) + " is not recorded";
        return Fail::kKey;
      }
      out.has_time = true;
    }
    if (!one(v, arch, s.loss, e, out.loss) || !one(v, arch, s.accuracy, e, out.accuracy)) {
      message = "loss or accuracy at epoch " + std::to_string(e) + " is not recorded";
      return Fail::kKey;
    }
    return Fail::kOk;
  }

  Fail mean_set(const std::vector<std::size_t>& positions, std::int64_t arch, const SetSpec& s, std::int64_t e,
                SetValues& out, std::string& message) const {
    SetValues sum;
    bool times = true;
    for (std::size_t k = 0; k < positions.size(); ++k) {
      SetValues v;
      const Fail f = one_set(*views_[positions[k]], arch, s, e, v, message);
      if (f != Fail::kOk) return f;
      if (k == 0) times = v.has_time;
      sum.loss += v.loss;
      sum.accuracy += v.accuracy;
      sum.cur_time += v.cur_time;
      sum.all_time += v.all_time;
    }
    const double n = static_cast<double>(positions.size());
    out.loss = sum.loss / n;
    out.accuracy = sum.accuracy / n;
    out.cur_time = sum.cur_time / n;
    out.all_time = sum.all_time / n;
    out.has_time = times;
    return Fail::kOk;
  }

  // flops/params: the seed mean, or seed 888's value when the seeds disagree in the 5th decimal
  // (nats_bench's fix for a legacy weight-migration issue, v1.6).
  py::object legacy_mean(const std::vector<std::size_t>& positions, std::int64_t arch, std::int64_t scalar) const {
    if (scalar < 0) return py::none();
    std::vector<double> values;
    for (auto p : positions) {
      double value;
      std::uint8_t present;
      views_[p]->gather_scalars(1, &arch, scalar, &value, &present, /*single=*/true);
      if (!present) return py::none();
      values.push_back(value);
    }
    bool agree = true;
    char first[64], other[64];
    std::snprintf(first, sizeof first, "%.5f", values[0]);
    for (std::size_t k = 1; k < values.size() && agree; ++k) {
      std::snprintf(other, sizeof other, "%.5f", values[k]);
      agree = std::string(first) == other;
    }
    if (!agree) {
      for (std::size_t k = 0; k < positions.size(); ++k) {
        if (seeds_[positions[k]] == 888) return as_float(values[k]);
      }
      throw py::value_error("888 is not in list");  // what nats_bench raises there
    }
    double sum = 0;
    for (double v : values) sum += v;
    return as_float(sum / static_cast<double>(values.size()));
  }

  py::object latency_of(const std::vector<std::size_t>& positions, std::int64_t arch) const {
    if (latency_ < 0) return py::none();
    double sum = 0;
    int count = 0;
    for (auto p : positions) {
      double value;
      std::uint8_t present;
      views_[p]->gather_scalars(1, &arch, latency_, &value, &present, /*single=*/true);
      if (present && value > 0) {
        sum += value;
        ++count;
      }
    }
    return count ? as_float(sum / count) : py::none();
  }

  template <typename Fn>
  void times_item(py::dict& out, const std::vector<std::size_t>& positions, Fn per_seed, const py::object& epoch_key,
                  const py::object& total_key) const {
    double mean_sum = 0, total_sum = 0;
    bool ok = true;
    for (std::size_t k = 0; k < positions.size() && ok; ++k) {
      double mean = 0, sum = 0;
      ok = per_seed(*views_[positions[k]], mean, sum);
      mean_sum += mean;
      total_sum += sum;
    }
    const double n = static_cast<double>(positions.size());
    set_item(out, epoch_key, ok ? as_float(mean_sum / n) : py::none());
    set_item(out, total_key, ok ? as_float(total_sum / n) : py::none());
  }

  std::vector<std::shared_ptr<RunView>> views_;
  std::vector<std::int64_t> seeds_;
  std::int64_t epochs_;
  std::vector<std::int64_t> iota_;  // 0..epochs-1
  mutable std::vector<float> values_;  // scratch for a time series (calls hold the GIL: one at a time)
  mutable std::vector<std::uint8_t> present_;
  std::vector<SetSpec> sets_;
  std::vector<Output> outputs_;
  std::vector<EvalTime> eval_times_;
  std::vector<py::object> keys_;
  py::object comment_key_, comment_;
  std::int64_t flops_, params_, latency_;
};

}  // namespace

void bind_nats_plan(py::module_& m) {
  bind_nats_lookups(m);
  py::class_<NatsPlan>(m, "NatsPlan",
                       "NATS-Bench query semantics for one (dataset, hp) of a table (see nb360.compat.nats).")
      .def(py::init<std::vector<std::shared_ptr<RunView>>, std::vector<std::int64_t>, std::int64_t,
                    std::vector<py::tuple>, std::vector<py::tuple>, py::object, py::object, std::int64_t,
                    std::int64_t, std::int64_t, std::vector<py::tuple>>(),
           py::arg("views"), py::arg("seeds"), py::arg("epochs"), py::arg("sets"), py::arg("outputs"),
           py::arg("comment_key"), py::arg("comment"), py::arg("flops"), py::arg("params"), py::arg("latency"),
           py::arg("eval_times"))
      .def("recorded", &NatsPlan::recorded, py::arg("arch"), "The seeds whose run records `arch`, in order.")
      .def("more_info", &NatsPlan::more_info, py::arg("arch"), py::arg("seed_pos"), py::arg("iepoch"))
      .def("metrics", &NatsPlan::metrics, py::arg("arch"), py::arg("set"), py::arg("seed_pos"), py::arg("iepoch"))
      .def("costs", &NatsPlan::costs, py::arg("arch"), py::arg("seed_pos") = -1, py::arg("times") = true)
      .def("latency", &NatsPlan::latency, py::arg("arch"));
}

}  // namespace nb360
