// The command line shared by the example programs: one program per seed
// network, each variant a bound network type.
//   NAME infer   --variant V --weights W.safetensors --input X.npy --output Y.npy
//   NAME summary --variant V
//   NAME bench   --variant V [--batch N] [--threads T] [--runs R] [--train | --profile]
//   NAME init    --variant V --output W.safetensors [--seed S]
//   NAME grad    --variant V --weights W.safetensors --input X.npy --target T.npy
//                --loss {ce,dice,dice_ce} [--weight-map M.npy] [--ignore-index K] --output G.safetensors
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <optional>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <tbb/global_control.h>
#include <tbb/task_arena.h>

#include "ctseg/error.hpp"
#include "ctseg/interop.hpp"
#include "ctseg/model/network.hpp"
#include "ctseg/model/training.hpp"
#include "ctseg/train/losses.hpp"
#include "ctseg/train/optim.hpp"
#include "ctseg/plan/summary.hpp"

namespace ctseg::examples {

// A variant: its name on the command line and its bound network type.
template <fixed_string Name, class Bound>
struct variant {
    static constexpr std::string_view name = Name.view();
    using bound = Bound;
};

struct options {
    std::string command, variant, weights, input, output, target, loss, weight_map;
    std::optional<std::int64_t> ignore_index;
    long batch = 1, threads = 0, runs = 10, seed = 0;
    bool train_step = false;
    bool profile = false;
};

inline std::string shape_string(const std::vector<std::int64_t>& s) {
    std::string r = "[";
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i) r += ", ";
        r += std::to_string(s[i]);
    }
    return r + "]";
}

inline long parse_integer(std::string_view flag, const std::string& text) {
    std::size_t used = 0;
    long v = 0;
    try {
        v = std::stol(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used != text.size() || text.empty()) throw error(std::string(flag) + " needs an integer, got '" + text + "'");
    return v;
}

inline long parse_count(std::string_view flag, const std::string& text) {
    long v = 0;
    try {
        v = parse_integer(flag, text);
    } catch (const error&) {
        v = 0;
    }
    if (v <= 0) throw error(std::string(flag) + " needs a positive integer, got '" + text + "'");
    return v;
}

inline options parse(int argc, char** argv, std::string_view usage) {
    options o;
    if (argc < 2) throw error("no command given; " + std::string(usage));
    o.command = argv[1];
    if (o.command == "--help" || o.command == "-h") {
        o.command = "help";
        return o;
    }
    if (o.command != "infer" && o.command != "summary" && o.command != "bench" && o.command != "init" && o.command != "grad")
        throw error("unknown command '" + o.command + "'; " + std::string(usage));
    for (int i = 2; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "--help" || flag == "-h") { o.command = "help"; return o; }
        if (flag == "--train" && o.command == "bench") { o.train_step = true; continue; }
        if (flag == "--profile" && o.command == "bench") { o.profile = true; continue; }
        if (i + 1 >= argc) throw error("option " + flag + " needs a value (or is unknown); " + std::string(usage));
        const std::string value = argv[++i];
        if (flag == "--variant") o.variant = value;
        else if (flag == "--weights") o.weights = value;
        else if (flag == "--input") o.input = value;
        else if (flag == "--output") o.output = value;
        else if (flag == "--batch") o.batch = parse_count(flag, value);
        else if (flag == "--threads") o.threads = parse_count(flag, value);
        else if (flag == "--runs") o.runs = parse_count(flag, value);
        else if (flag == "--seed") o.seed = value == "0" ? 0 : parse_count(flag, value);
        else if (flag == "--target") o.target = value;
        else if (flag == "--loss") o.loss = value;
        else if (flag == "--weight-map") o.weight_map = value;
        else if (flag == "--ignore-index") o.ignore_index = parse_integer(flag, value);
        else throw error("unknown option '" + flag + "'; " + std::string(usage));
    }
    if (o.variant.empty()) throw error("--variant is required; " + std::string(usage));
    if (o.command == "infer" && (o.weights.empty() || o.input.empty() || o.output.empty()))
        throw error("infer needs --weights, --input and --output; " + std::string(usage));
    if (o.command == "init" && o.output.empty()) throw error("init needs --output; " + std::string(usage));
    if (o.command == "grad") {
        if (o.weights.empty() || o.input.empty() || o.target.empty() || o.loss.empty() || o.output.empty())
            throw error("grad needs --weights, --input, --target, --loss and --output; " + std::string(usage));
        if (o.loss != "ce" && o.loss != "dice" && o.loss != "dice_ce")
            throw error("--loss must be ce, dice or dice_ce, got '" + o.loss + "'");
    }
    return o;
}

// The --input tensor, checked against the variant's input shape.
template <class Bound>
interop::npy_array<float> read_input(const options& o) {
    using in = typename Bound::input_shape;
    auto x = interop::read_npy_as<float>(o.input);
    std::vector<std::int64_t> want{-1, std::int64_t(in::channels)};
    for (auto e : in::spatial) want.push_back(std::int64_t(e));
    bool ok = x.shape.size() == want.size() && x.shape[0] > 0;
    for (std::size_t i = 1; ok && i < want.size(); ++i) ok = x.shape[i] == want[i];
    if (!ok) {
        std::vector<std::int64_t> rest(want.begin() + 1, want.end());
        throw error(o.input + ": input has shape " + shape_string(x.shape) + ", variant '" + o.variant + "' expects [N, " +
                    shape_string(rest).substr(1));
    }
    return x;
}

template <class Bound>
void infer(const options& o) {
    using net_t = network<Bound>;
    using out = typename Bound::output_shape;
    auto x = read_input<Bound>(o);
    auto model = std::make_unique<net_t>();
    interop::load_state_dict(*model, o.weights);
    const auto batch = exec::index_t(x.shape[0]);
    std::vector<float> y(std::size_t(batch) * out::size);
    const auto t0 = std::chrono::steady_clock::now();
    model->forward(batch, x.values.data(), y.data());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<std::int64_t> yshape{batch, std::int64_t(out::channels)};
    for (auto e : out::spatial) yshape.push_back(std::int64_t(e));
    interop::write_npy(o.output, interop::host_tensor::from(std::span<const float>(y), yshape));
    std::printf("%s: logits %s from input %s in %.3f s\n", o.output.c_str(), shape_string(yshape).c_str(), shape_string(x.shape).c_str(),
                seconds);
}

// One forward/backward in training mode: prints the loss and writes the gradient
// of every parameter, keyed as PyTorch's named_parameters().
template <class Bound>
void grad(const options& o) {
    using out = typename Bound::output_shape;
    auto x = read_input<Bound>(o);
    const auto batch = exec::index_t(x.shape[0]);
    std::vector<std::int64_t> label_shape{batch};
    for (auto e : out::spatial) label_shape.push_back(std::int64_t(e));
    auto target = interop::read_npy_as<std::int64_t>(o.target);
    if (target.shape != label_shape)
        throw error(o.target + ": target has shape " + shape_string(target.shape) + ", the output needs labels of shape " +
                    shape_string(label_shape));
    interop::npy_array<float> weight;
    if (!o.weight_map.empty()) {
        weight = interop::read_npy_as<float>(o.weight_map);
        if (weight.shape != label_shape)
            throw error(o.weight_map + ": weight map has shape " + shape_string(weight.shape) + ", the output needs " +
                        shape_string(label_shape));
    }
    auto model = std::make_unique<network<Bound>>();
    interop::load_state_dict(*model, o.weights);
    tape<Bound> t(batch);
    forward_train(*model, x.values.data(), t);
    train::loss_options<float> lo;
    lo.kind = o.loss == "ce" ? train::loss_kind::ce : o.loss == "dice" ? train::loss_kind::dice : train::loss_kind::dice_ce;
    lo.weight = o.weight_map.empty() ? nullptr : weight.values.data();
    lo.ignore_index = o.ignore_index;
    std::vector<float> dlogits(t.output().size());
    const train::loss_shape shape{std::size_t(batch), out::channels, out::plane};
    train::loss_value loss;
    try {
        loss = train::compute_loss<float>(t.output().data(), target.values.data(), shape, lo, dlogits.data());
    } catch (const error& e) {
        throw error(o.target + ": " + e.what());
    }
    std::vector<float> dparams(model->parameters().size(), 0.0f);
    backward(*model, t, dlogits.data(), std::span<float>(dparams));
    std::map<std::string, interop::host_tensor> grads;
    constexpr const auto& g = Bound::lowered;
    for (std::size_t i = 0; i < g.n_params; ++i) {
        const auto& p = g.params[i];
        if (!p.trainable || p.counter) continue;
        std::vector<std::int64_t> shape_i(p.shape.begin(), p.shape.begin() + p.rank);
        grads.emplace(std::string(p.name.view()),
                      interop::host_tensor::from(std::span<const float>(dparams.data() + p.offset, std::size_t(p.count)), shape_i));
    }
    interop::write_safetensors(o.output, grads);
    std::printf("loss %.9g\n", loss.total);
}

// Weights as PyTorch initialises a fresh module (seeded), saved as safetensors.
template <class Bound>
void init(const options& o) {
    auto model = std::make_unique<network<Bound>>(std::uint64_t(o.seed));
    interop::save_state_dict(*model, o.output);
    std::printf("%s: %ld parameters\n", o.output.c_str(), Bound::parameter_count);
}

template <class Bound>
void bench(const options& o) {
    using net_t = network<Bound>;
    using out = typename Bound::output_shape;
    const long threads = o.threads > 0 ? o.threads : long(tbb::this_task_arena::max_concurrency());
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism, std::size_t(threads));
    tbb::task_arena arena{int(threads)};
    auto model = std::make_unique<net_t>(1);
    std::vector<float> x(std::size_t(o.batch) * net_t::input_size), y(std::size_t(o.batch) * net_t::output_size);
    std::mt19937 rng(7);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(rng);
    // Training steps: forward in training mode, dice_ce, backward, SGD with momentum.
    std::vector<std::int64_t> labels(std::size_t(o.batch) * out::plane);
    for (auto& l : labels) l = std::int64_t(rng() % out::channels);
    std::unique_ptr<tape<Bound>> t;
    std::vector<float> dlogits, grads;
    std::unique_ptr<train::sgd<float>> sgd;
    if (o.train_step) {
        t = std::make_unique<tape<Bound>>(o.batch);
        dlogits.resize(y.size());
        grads.assign(model->parameters().size(), 0.0f);
        std::vector<train::param_ref<float>> params;
        constexpr const auto& g = Bound::lowered;
        for (std::size_t i = 0; i < g.n_params; ++i) {
            const auto& p = g.params[i];
            if (!p.trainable || p.counter) continue;
            params.push_back({std::string(p.name.view()), std::vector<std::int64_t>(p.shape.begin(), p.shape.begin() + p.rank),
                              model->parameters().subspan(std::size_t(p.offset), std::size_t(p.count)),
                              std::span<const float>(grads).subspan(std::size_t(p.offset), std::size_t(p.count))});
        }
        sgd = std::make_unique<train::sgd<float>>(std::move(params), train::sgd_options{1e-3, 0.9, 0, false, 0});
    }
    auto once = [&] {
        if (!o.train_step) {
            model->forward(o.batch, x.data(), y.data());
            return;
        }
        forward_train(*model, x.data(), *t);
        train::loss_options<float> lo;
        lo.kind = train::loss_kind::dice_ce;
        train::compute_loss<float>(t->output().data(), labels.data(), {std::size_t(o.batch), out::channels, out::plane}, lo,
                                   dlogits.data());
        std::fill(grads.begin(), grads.end(), 0.0f);
        backward(*model, *t, dlogits.data(), std::span<float>(grads));
        sgd->step();
    };
    std::vector<double> times;
    arena.execute([&] {
        once();  // warm-up
        for (long r = 0; r < o.runs; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            once();
            const auto t1 = std::chrono::steady_clock::now();
            times.push_back(std::chrono::duration<double>(t1 - t0).count());
            std::printf("run %ld %.6f\n", r, times.back());
        }
    });
    if (o.profile && !o.train_step) {
        // Per operation: the median over the runs of its time, in execution order.
        std::vector<std::vector<typename net_t::op_timing>> runs;
        arena.execute([&] {
            for (long r = 0; r < o.runs; ++r) runs.push_back(model->profile(o.batch, x.data(), y.data()));
        });
        double total = 0;
        std::vector<double> med(runs.front().size());
        for (std::size_t i = 0; i < med.size(); ++i) {
            std::vector<double> s;
            for (auto& r : runs) s.push_back(r[i].seconds);
            std::sort(s.begin(), s.end());
            med[i] = s[s.size() / 2];
            total += med[i];
        }
        std::printf("%-4s %-40s %-15s %10s %7s %9s\n", "op", "layer", "kind", "ms", "share", "GFLOP/s");
        for (std::size_t i = 0; i < med.size(); ++i) {
            const auto& t = runs.front()[i];
            std::printf("%-4zu %-40.*s %-15.*s %10.3f %6.1f%% %9.1f\n", i, int(t.path.size()), t.path.data(), int(t.kind.size()),
                        t.kind.data(), med[i] * 1e3, 100.0 * med[i] / total, t.flops > 0 ? t.flops * 1e-9 / med[i] : 0.0);
        }
        std::printf("profiled_total_s %.6f\n", total);
    }
    std::sort(times.begin(), times.end());
    const double median = times.size() % 2 ? times[times.size() / 2] : 0.5 * (times[times.size() / 2 - 1] + times[times.size() / 2]);
    const double gflop = double(Bound::flops) * double(o.batch) * 1e-9 * (o.train_step ? 3.0 : 1.0);
    std::printf("threads %ld batch %ld %s gflop_per_run %.3f gflops %.1f\n", threads, o.batch, o.train_step ? "train" : "forward", gflop,
                gflop / median);
    std::printf("median_s %.6f\n", median);
}

template <class... Variants>
int run(std::string_view program, int argc, char** argv) {
    std::string names;
    ((names += (names.empty() ? "" : ", ") + std::string(Variants::name)), ...);
    const std::string usage = "usage: " + std::string(program) +
                              " {infer --variant V --weights W.safetensors --input X.npy --output Y.npy | summary --variant V | "
                              "bench --variant V [--batch N] [--threads T] [--runs R] [--train | --profile] | init --variant V --output W.safetensors [--seed S] | "
                              "grad --variant V --weights W.safetensors --input X.npy --target T.npy --loss {ce,dice,dice_ce} "
                              "[--weight-map M.npy] [--ignore-index K] --output G.safetensors} "
                              "with V in {" + names + "}";
    try {
        const options o = parse(argc, argv, usage);
        if (o.command == "help") {
            std::cout << usage << '\n';
            return 0;
        }
        bool found = false;
        (([&] {
             if (found || o.variant != Variants::name) return;
             found = true;
             using B = typename Variants::bound;
             if (o.command == "summary") print_summary<B>(std::cout);
             else if (o.command == "infer") infer<B>(o);
             else if (o.command == "init") init<B>(o);
             else if (o.command == "grad") grad<B>(o);
             else bench<B>(o);
         }()), ...);
        if (!found) throw error("unknown variant '" + o.variant + "'; known: " + names);
        return 0;
    } catch (const std::bad_alloc&) {
        std::cerr << program << ": error: out of memory\n";
    } catch (const std::exception& e) {
        std::cerr << program << ": error: " << e.what() << '\n';
    }
    return 1;
}

}  // namespace ctseg::examples
