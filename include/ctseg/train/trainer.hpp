// Training a bound network from C++ in a few lines:
//
//   ctseg::network<B> net;
//   ctseg::train::trainer_options opt;
//   opt.epochs = 20; opt.batch_size = 4; opt.checkpoint_dir = "run";
//   ctseg::train::trainer<B> t(net, opt);
//   t.fit(train_set, &validation_set);
//
// Each epoch visits the training samples in an order drawn from (seed, epoch)
// alone, runs forward/backward in training mode, and steps the optimizer with
// the scheduled learning rate. After each epoch it evaluates the validation set
// (loss and hard Dice per class), appends a row to metrics.csv and writes the
// checkpoints last.* (and best.* when the validation loss improved): the model
// as a PyTorch state_dict (<name>.safetensors) and the optimizer state
// (<name>.optim.safetensors), both atomically, the optimizer first. A run
// started again with the same options resumes from last.* and continues
// exactly as if never interrupted: everything depends on the epoch number, not
// on what happened in the process before.
#pragma once
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "ctseg/error.hpp"
#include "ctseg/interop/atomic_file.hpp"
#include "ctseg/interop/safetensors.hpp"
#include "ctseg/interop/state_dict.hpp"
#include "ctseg/model/network.hpp"
#include "ctseg/model/training.hpp"
#include "ctseg/train/losses.hpp"
#include "ctseg/train/optim.hpp"
#include "ctseg/train/schedule.hpp"

namespace ctseg::train {

// Samples in network layout: images N x C x extents, labels N x extents' of
// the output, optional per-pixel loss weights like the labels.
template <class T>
struct dataset {
    std::size_t count = 0;
    std::vector<T> images;
    std::vector<std::int64_t> labels;
    std::vector<T> weights;  // empty: all ones
};

enum class optimizer_kind { sgd, adam, adamw };

struct epoch_record {
    std::size_t epoch = 0;  // 1-based
    double train_loss = 0, val_loss = NAN, val_dice = NAN, lr = 0, seconds = 0;
};

struct trainer_options {
    std::size_t epochs = 10;
    std::size_t batch_size = 4;
    loss_kind loss = loss_kind::dice_ce;
    std::optional<std::int64_t> ignore_index;
    dice_average dice_over = dice_average::all_classes;  // Dice term: every class, or those present per sample
    optimizer_kind optimizer = optimizer_kind::adam;
    sgd_options sgd{};
    adam_options adam{};
    // Learning rate per iteration; empty: the optimizer's lr throughout.
    std::optional<lr_schedule> schedule;
    std::uint64_t seed = 0;
    bool shuffle = true;
    std::filesystem::path checkpoint_dir;  // empty: no checkpoints, no CSV
    bool resume = true;                    // continue from checkpoint_dir/last.* when present
    bool progress = true;                  // a progress line on standard error
    // Called after every optimizer step with the global iteration number (1-based).
    std::function<void(std::size_t)> on_iteration;
    // Called after every epoch, once its checkpoints and metrics.csv are written.
    std::function<void(const epoch_record&)> on_epoch;
};

template <class Bound, class T = float>
class trainer {
    using net_t = network<Bound, T>;
    using out = typename Bound::output_shape;
    using in = typename Bound::input_shape;

public:
    trainer(net_t& net, trainer_options opt) : net_(net), opt_(std::move(opt)), grads_(net.parameters().size(), T(0)) {
        if (opt_.batch_size == 0) throw error("trainer: batch_size must be at least 1");
        constexpr const auto& g = Bound::lowered;
        std::vector<param_ref<T>> params;
        for (std::size_t i = 0; i < g.n_params; ++i) {
            const auto& p = g.params[i];
            if (!p.trainable || p.counter) continue;
            params.push_back({std::string(p.name.view()), std::vector<std::int64_t>(p.shape.begin(), p.shape.begin() + p.rank),
                              net.parameters().subspan(std::size_t(p.offset), std::size_t(p.count)),
                              std::span<const T>(grads_).subspan(std::size_t(p.offset), std::size_t(p.count))});
        }
        switch (opt_.optimizer) {
            case optimizer_kind::sgd: optimizer_.template emplace<sgd<T>>(std::move(params), opt_.sgd); break;
            case optimizer_kind::adam: optimizer_.template emplace<adam<T>>(std::move(params), opt_.adam); break;
            case optimizer_kind::adamw: optimizer_.template emplace<adamw<T>>(std::move(params), opt_.adam); break;
        }
    }

    // Trains until opt.epochs epochs are done (resuming first when asked).
    const std::vector<epoch_record>& fit(const dataset<T>& training, const dataset<T>* validation = nullptr) {
        return fit([&](std::size_t) -> const dataset<T>& { return training; }, validation);
    }

    // The same with a training set made afresh for every epoch (random crops,
    // augmentation): `training_for(epoch)` must depend on the epoch number
    // alone (seed it from it), so that a resumed run sees the same samples.
    const std::vector<epoch_record>& fit(const std::function<const dataset<T>&(std::size_t epoch)>& training_for,
                                         const dataset<T>* validation = nullptr) {
        if (validation) check(*validation, "validation set");
        if (!opt_.checkpoint_dir.empty()) std::filesystem::create_directories(opt_.checkpoint_dir);
        if (opt_.resume && !opt_.checkpoint_dir.empty() && std::filesystem::exists(opt_.checkpoint_dir / "last.safetensors"))
            load_checkpoint("last");
        for (std::size_t epoch = epochs_done_ + 1; epoch <= opt_.epochs; ++epoch) {
            const auto t0 = std::chrono::steady_clock::now();
            const dataset<T>& training = training_for(epoch);
            check(training, "training set");
            const std::size_t per_epoch = (training.count + opt_.batch_size - 1) / opt_.batch_size;
            const auto order = visiting_order(training.count, epoch);
            double loss_sum = 0;
            std::size_t seen = 0;
            for (std::size_t it = 0; it < per_epoch; ++it) {
                const std::size_t first = it * opt_.batch_size, n = std::min(opt_.batch_size, training.count - first);
                const double lr = opt_.schedule ? opt_.schedule->lr_at(step_) : base_lr();
                std::visit([&](auto& o) { o.set_lr(lr); }, optimizer_);
                loss_sum += train_step(training, std::span<const std::size_t>(order).subspan(first, n)) * double(n);
                seen += n;
                ++step_;
                if (opt_.progress) progress(epoch, it + 1, per_epoch, loss_sum / double(seen), seen, t0);
                if (opt_.on_iteration) opt_.on_iteration(step_);
            }
            // The optimizer wrote the parameters after the last forward pass:
            // refresh what inference derives from them before evaluating.
            net_.state_changed();
            epoch_record r;
            r.epoch = epoch;
            r.train_loss = loss_sum / double(std::max<std::size_t>(seen, 1));
            r.lr = std::visit([](auto& o) { return o.lr(); }, optimizer_);
            if (validation) std::tie(r.val_loss, r.val_dice) = evaluate(*validation);
            r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            history_.push_back(r);
            epochs_done_ = epoch;
            if (opt_.progress) finish_line(r);
            const double score = validation ? r.val_loss : r.train_loss;
            const bool improved = !(best_ <= score);
            if (improved) best_ = score;
            if (!opt_.checkpoint_dir.empty()) {
                if (improved) save_checkpoint("best");
                save_checkpoint("last");
                write_csv();
            }
            if (opt_.on_epoch) opt_.on_epoch(r);
        }
        return history_;
    }

    // Loss and mean hard Dice over the classes present, of a dataset in eval mode.
    std::pair<double, double> evaluate(const dataset<T>& data) const {
        dice_counts counts(out::channels);
        double loss_sum = 0;
        std::vector<T> logits;
        for (std::size_t first = 0; first < data.count; first += opt_.batch_size) {
            const std::size_t n = std::min(opt_.batch_size, data.count - first);
            logits.resize(n * out::size);
            net_.forward(exec::index_t(n), data.images.data() + first * in::size, logits.data());
            loss_options<T> lo;
            lo.kind = opt_.loss;
            lo.ignore_index = opt_.ignore_index;
            lo.dice_over = opt_.dice_over;
            lo.weight = data.weights.empty() ? nullptr : data.weights.data() + first * out::plane;
            const loss_shape shape{n, out::channels, out::plane};
            loss_sum += compute_loss<T>(logits.data(), data.labels.data() + first * out::plane, shape, lo).total * double(n);
            counts.add(logits.data(), data.labels.data() + first * out::plane, shape, opt_.ignore_index);
        }
        const auto dice = counts.dice();
        double sum = 0;
        int present = 0;
        for (double d : dice)
            if (!std::isnan(d)) { sum += d; ++present; }
        return {loss_sum / double(std::max<std::size_t>(data.count, 1)), present ? sum / present : NAN};
    }

    const std::vector<epoch_record>& history() const { return history_; }
    std::size_t epochs_done() const { return epochs_done_; }
    std::size_t iterations() const { return step_; }

private:
    void check(const dataset<T>& d, const char* what) const {
        if (d.count == 0) throw error(std::string("trainer: the ") + what + " is empty");
        if (d.images.size() != d.count * in::size || d.labels.size() != d.count * out::plane ||
            (!d.weights.empty() && d.weights.size() != d.count * out::plane))
            throw error(std::string("trainer: the ") + what + " has " + std::to_string(d.count) + " samples but " +
                        std::to_string(d.images.size()) + " image values (" + std::to_string(in::size) + " per sample), " +
                        std::to_string(d.labels.size()) + " labels (" + std::to_string(out::plane) + " per sample)" +
                        (d.weights.empty() ? "" : " and " + std::to_string(d.weights.size()) + " weights"));
    }

    double base_lr() const { return opt_.optimizer == optimizer_kind::sgd ? opt_.sgd.lr : opt_.adam.lr; }

    // A permutation that depends on (seed, epoch) only: what a resumed run needs.
    std::vector<std::size_t> visiting_order(std::size_t n, std::size_t epoch) const {
        std::vector<std::size_t> order(n);
        std::iota(order.begin(), order.end(), std::size_t{0});
        if (!opt_.shuffle) return order;
        std::mt19937_64 rng(opt_.seed * 0x9E3779B97F4A7C15ull + epoch);
        for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[std::size_t(rng() % i)]);  // Fisher-Yates
        return order;
    }

    double train_step(const dataset<T>& d, std::span<const std::size_t> samples) {
        const std::size_t n = samples.size();
        batch_images_.resize(n * in::size);
        batch_labels_.resize(n * out::plane);
        batch_weights_.resize(d.weights.empty() ? 0 : n * out::plane);
        for (std::size_t k = 0; k < n; ++k) {
            const std::size_t s = samples[k];
            std::copy_n(d.images.begin() + std::ptrdiff_t(s * in::size), in::size, batch_images_.begin() + std::ptrdiff_t(k * in::size));
            std::copy_n(d.labels.begin() + std::ptrdiff_t(s * out::plane), out::plane, batch_labels_.begin() + std::ptrdiff_t(k * out::plane));
            if (!d.weights.empty())
                std::copy_n(d.weights.begin() + std::ptrdiff_t(s * out::plane), out::plane, batch_weights_.begin() + std::ptrdiff_t(k * out::plane));
        }
        auto& t = tape_for(n);
        forward_train(net_, batch_images_.data(), t);
        loss_options<T> lo;
        lo.kind = opt_.loss;
        lo.ignore_index = opt_.ignore_index;
        lo.dice_over = opt_.dice_over;
        lo.weight = batch_weights_.empty() ? nullptr : batch_weights_.data();
        dlogits_.resize(n * out::size);
        const loss_value v = compute_loss<T>(t.output().data(), batch_labels_.data(), loss_shape{n, out::channels, out::plane}, lo,
                                             dlogits_.data());
        std::fill(grads_.begin(), grads_.end(), T(0));
        backward(net_, t, dlogits_.data(), std::span<T>(grads_));
        std::visit([](auto& o) { o.step(); }, optimizer_);
        return v.total;
    }

    tape<Bound, T>& tape_for(std::size_t n) {
        auto& slot = tapes_[n];
        if (!slot) slot = std::make_unique<tape<Bound, T>>(exec::index_t(n));
        return *slot;
    }

    std::map<std::string, std::string> metadata() const {
        std::ostringstream best;
        best.precision(17);
        best << best_;
        return {{"epoch", std::to_string(epochs_done_)}, {"iteration", std::to_string(step_)},
                {"optimizer_steps", std::to_string(std::visit([](auto& o) { return o.step_count(); }, optimizer_))},
                {"best", best.str()}, {"format", "pt"}};
    }

    void save_checkpoint(const std::string& name) {
        const auto meta = metadata();
        std::map<std::string, interop::host_tensor> state;
        std::visit(
            [&](auto& o) {
                for (auto& s : o.state()) state.emplace(s.name, interop::host_tensor::from(std::span<const T>(s.data), s.shape));
            },
            optimizer_);
        // Optimizer first, model last: a model file always has its optimizer file.
        interop::write_safetensors(opt_.checkpoint_dir / (name + ".optim.safetensors"), state, meta);
        interop::save_state_dict(net_, opt_.checkpoint_dir / (name + ".safetensors"), meta);
    }

    void load_checkpoint(const std::string& name) {
        const auto model_file = opt_.checkpoint_dir / (name + ".safetensors");
        const auto optim_file = opt_.checkpoint_dir / (name + ".optim.safetensors");
        const auto model_meta = interop::read_safetensors(model_file).metadata;
        const auto optim = interop::read_safetensors(optim_file);
        auto field = [&](const std::map<std::string, std::string>& m, const std::filesystem::path& f, const char* key) {
            const auto it = m.find(key);
            if (it == m.end()) throw error(f.string() + ": checkpoint metadata has no '" + key + "'");
            return it->second;
        };
        for (const char* key : {"epoch", "iteration", "optimizer_steps"})
            if (field(model_meta, model_file, key) != field(optim.metadata, optim_file, key))
                throw error(optim_file.string() + ": " + key + " " + field(optim.metadata, optim_file, key) + " does not match " +
                            model_file.string() + " (" + field(model_meta, model_file, key) + ")");
        interop::load_state_dict(net_, model_file);
        std::visit(
            [&](auto& o) {
                auto refs = o.state();
                for (auto& s : refs) {
                    const auto it = optim.tensors.find(s.name);
                    if (it == optim.tensors.end()) throw error(optim_file.string() + ": missing tensor '" + s.name + "'");
                    if (it->second.shape != s.shape || it->second.type != interop::dtype_of<T>)
                        throw error(optim_file.string() + ": tensor '" + s.name + "' has the wrong shape or type");
                    const auto v = it->second.template as<T>();
                    std::copy(v.begin(), v.end(), s.data.begin());
                }
                if (optim.tensors.size() != refs.size())
                    throw error(optim_file.string() + ": has " + std::to_string(optim.tensors.size()) + " tensors, the optimizer " +
                                std::to_string(refs.size()));
                o.set_step_count(std::stoll(field(optim.metadata, optim_file, "optimizer_steps")));
            },
            optimizer_);
        epochs_done_ = std::stoul(field(model_meta, model_file, "epoch"));
        step_ = std::stoul(field(model_meta, model_file, "iteration"));
        best_ = std::stod(field(model_meta, model_file, "best"));
        read_csv();
    }

    static constexpr const char* csv_header = "epoch,train_loss,val_loss,val_dice,lr,seconds";

    void write_csv() const {
        std::ostringstream s;
        s.precision(9);
        s << csv_header << '\n';
        for (const auto& r : history_)
            s << r.epoch << ',' << r.train_loss << ',' << r.val_loss << ',' << r.val_dice << ',' << r.lr << ',' << r.seconds << '\n';
        const std::string text = s.str();
        interop::write_file_atomically(opt_.checkpoint_dir / "metrics.csv", std::as_bytes(std::span(text)));
    }

    // Rows of epochs the checkpoint covers, kept when resuming.
    void read_csv() {
        history_.clear();
        std::ifstream f(opt_.checkpoint_dir / "metrics.csv");
        std::string line;
        if (!std::getline(f, line)) return;
        while (std::getline(f, line)) {
            epoch_record r;
            char c = 0;
            std::istringstream row(line);
            row >> r.epoch >> c >> r.train_loss >> c >> r.val_loss >> c >> r.val_dice >> c >> r.lr >> c >> r.seconds;
            if (row && r.epoch <= epochs_done_) history_.push_back(r);
        }
    }

    void progress(std::size_t epoch, std::size_t it, std::size_t per_epoch, double loss, std::size_t seen,
                  std::chrono::steady_clock::time_point t0) const {
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double rate = double(seen) / std::max(s, 1e-9);
        const double left = (double(per_epoch - it) + double(per_epoch) * double(opt_.epochs - epoch)) * s / double(it);
        std::fprintf(stderr, "\repoch %zu/%zu  iteration %zu/%zu  loss %.4f  %.1f samples/s  ETA %02d:%02d:%02d ", epoch, opt_.epochs, it,
                     per_epoch, loss, rate, int(left / 3600), int(left / 60) % 60, int(left) % 60);
    }
    void finish_line(const epoch_record& r) const {
        std::fprintf(stderr, "\repoch %zu/%zu  train loss %.4f", r.epoch, opt_.epochs, r.train_loss);
        if (!std::isnan(r.val_loss)) std::fprintf(stderr, "  validation loss %.4f  Dice %.4f", r.val_loss, r.val_dice);
        std::fprintf(stderr, "  lr %.3g  %.1f s\n", r.lr, r.seconds);
    }

    net_t& net_;
    trainer_options opt_;
    std::vector<T> grads_;
    std::variant<sgd<T>, adam<T>, adamw<T>> optimizer_{std::in_place_index<0>, std::vector<param_ref<T>>{}, sgd_options{}};
    std::map<std::size_t, std::unique_ptr<tape<Bound, T>>> tapes_;
    std::vector<T> batch_images_, dlogits_, batch_weights_;
    std::vector<std::int64_t> batch_labels_;
    std::vector<epoch_record> history_;
    std::size_t epochs_done_ = 0, step_ = 0;
    double best_ = INFINITY;
};

}  // namespace ctseg::train
