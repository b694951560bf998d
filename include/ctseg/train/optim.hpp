// Optimizers with PyTorch 1.13's update rules (torch.optim.SGD, Adam, AdamW;
// maximize, amsgrad, foreach and capturable are not supported).
//
// An optimizer holds a list of parameters, each a key, a shape, a span of
// values (updated in place) and a span of gradients (read at each step()). The
// spans must stay valid while the optimizer is used. Its state is exposed as
// named tensors with PyTorch-like names, for checkpoints:
//   SGD (momentum != 0): "<key>.momentum_buffer"
//   Adam / AdamW:        "<key>.exp_avg", "<key>.exp_avg_sq"
// plus the number of steps taken (step_count(); PyTorch keeps one "step" per
// parameter, always equal to it). After loading saved buffers into state(),
// call set_step_count() with the saved count.
//
// The arithmetic is done in double and stored as T. Each element is updated
// independently (in parallel for large tensors), so results do not depend on
// the number of threads.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ctseg/error.hpp"
#include "ctseg/exec/parallel.hpp"

namespace ctseg::train {

// One trainable tensor: values are updated in place from grads.
template <class T>
struct param_ref {
    std::string key;
    std::vector<std::int64_t> shape;
    std::span<T> value;
    std::span<const T> grad;
};

// One named tensor of optimizer state (a view of the optimizer's storage).
template <class T>
struct state_ref {
    std::string name;
    std::vector<std::int64_t> shape;
    std::span<T> data;
};

namespace detail::optim {

inline constexpr std::size_t grain = 1 << 14;

inline std::string shape_string(const std::vector<std::int64_t>& s) {
    std::string r = "[";
    for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

template <class T>
void check_params(const std::vector<param_ref<T>>& ps, const char* who) {
    std::set<std::string> keys;
    for (const auto& p : ps) {
        if (!keys.insert(p.key).second) throw error(std::string(who) + ": parameter key '" + p.key + "' appears twice");
        std::int64_t n = 1;
        for (auto d : p.shape) {
            if (d < 0) throw error(std::string(who) + ": parameter '" + p.key + "' has a negative extent in shape " +
                                   shape_string(p.shape));
            n *= d;
        }
        if (static_cast<std::size_t>(n) != p.value.size() || p.value.size() != p.grad.size())
            throw error(std::string(who) + ": parameter '" + p.key + "' has shape " + shape_string(p.shape) + " (" +
                        std::to_string(n) + " elements) but " + std::to_string(p.value.size()) + " values and " +
                        std::to_string(p.grad.size()) + " gradients");
    }
}

inline void check_finite_nonneg(double v, const char* who, const char* name) {
    if (!std::isfinite(v) || v < 0)
        throw error(std::string(who) + ": " + name + " must be finite and >= 0 (got " + std::to_string(v) + ")");
}

// f(i) for every element index of a tensor of `count` elements.
template <class F>
void for_elements(std::size_t count, F&& f) {
    exec::parallel_for_range(static_cast<exec::index_t>(count), static_cast<exec::index_t>(grain),
                             [&](exec::index_t b, exec::index_t e) {
                                 for (auto i = static_cast<std::size_t>(b); i < static_cast<std::size_t>(e); ++i)
                                     f(i);
                             });
}

}  // namespace detail::optim

struct sgd_options {
    double lr = 0.01;
    double momentum = 0;
    double dampening = 0;
    bool nesterov = false;
    double weight_decay = 0;
};

// torch.optim.SGD: d = g + wd p; with momentum, buf = d on the first step and
// buf = momentum buf + (1 - dampening) d after; d = nesterov ? d + momentum buf
// : buf; p -= lr d.
template <class T>
    requires std::is_floating_point_v<T>
class sgd {
public:
    sgd(std::vector<param_ref<T>> params, const sgd_options& opt) : params_(std::move(params)), opt_(opt) {
        detail::optim::check_params(params_, "sgd");
        detail::optim::check_finite_nonneg(opt.lr, "sgd", "lr");
        detail::optim::check_finite_nonneg(opt.momentum, "sgd", "momentum");
        detail::optim::check_finite_nonneg(opt.weight_decay, "sgd", "weight_decay");
        if (!std::isfinite(opt.dampening)) throw error("sgd: dampening must be finite");
        if (opt.nesterov && (opt.momentum <= 0 || opt.dampening != 0))
            throw error("sgd: Nesterov momentum requires a momentum > 0 and zero dampening");
        if (opt.momentum != 0)
            for (const auto& p : params_) buffers_.emplace_back(p.value.size(), T(0));
    }

    void step() {
        const double lr = opt_.lr, mom = opt_.momentum, damp = 1 - opt_.dampening, wd = opt_.weight_decay;
        const bool first = steps_ == 0;
        for (std::size_t j = 0; j < params_.size(); ++j) {
            T* p = params_[j].value.data();
            const T* g = params_[j].grad.data();
            T* buf = mom != 0 ? buffers_[j].data() : nullptr;
            detail::optim::for_elements(params_[j].value.size(), [&](std::size_t i) {
                double d = static_cast<double>(g[i]);
                if (wd != 0) d += wd * static_cast<double>(p[i]);
                if (buf) {
                    const double b = first ? d : mom * static_cast<double>(buf[i]) + damp * d;
                    buf[i] = static_cast<T>(b);
                    d = opt_.nesterov ? d + mom * b : b;
                }
                p[i] = static_cast<T>(static_cast<double>(p[i]) - lr * d);
            });
        }
        ++steps_;
    }

    double lr() const noexcept { return opt_.lr; }
    void set_lr(double lr) {
        detail::optim::check_finite_nonneg(lr, "sgd", "lr");
        opt_.lr = lr;
    }
    const sgd_options& options() const noexcept { return opt_; }
    std::int64_t step_count() const noexcept { return steps_; }
    void set_step_count(std::int64_t n) {
        if (n < 0) throw error("sgd: step count must be >= 0 (got " + std::to_string(n) + ")");
        steps_ = n;
    }
    const std::vector<param_ref<T>>& params() const noexcept { return params_; }

    // "<key>.momentum_buffer" per parameter (empty without momentum).
    std::vector<state_ref<T>> state() {
        std::vector<state_ref<T>> r;
        for (std::size_t j = 0; j < buffers_.size(); ++j)
            r.push_back({params_[j].key + ".momentum_buffer", params_[j].shape, std::span<T>(buffers_[j])});
        return r;
    }

private:
    std::vector<param_ref<T>> params_;
    sgd_options opt_;
    std::vector<std::vector<T>> buffers_;
    std::int64_t steps_ = 0;
};

struct adam_options {
    double lr = 1e-3;
    double beta1 = 0.9;
    double beta2 = 0.999;
    double eps = 1e-8;
    double weight_decay = 0;
    bool decoupled_weight_decay = false;  // true: AdamW
};

// torch.optim.AdamW's defaults (weight_decay 1e-2, decoupled).
inline adam_options adamw_options(double lr = 1e-3, double weight_decay = 1e-2) {
    adam_options o;
    o.lr = lr;
    o.weight_decay = weight_decay;
    o.decoupled_weight_decay = true;
    return o;
}

// torch.optim.Adam / AdamW, t = step count after increment:
//   Adam:  g += wd p                AdamW: p *= 1 - lr wd
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
template <class T>
    requires std::is_floating_point_v<T>
class adam {
public:
    adam(std::vector<param_ref<T>> params, const adam_options& opt) : params_(std::move(params)), opt_(opt) {
        const char* who = opt.decoupled_weight_decay ? "adamw" : "adam";
        detail::optim::check_params(params_, who);
        detail::optim::check_finite_nonneg(opt.lr, who, "lr");
        detail::optim::check_finite_nonneg(opt.eps, who, "eps");
        detail::optim::check_finite_nonneg(opt.weight_decay, who, "weight_decay");
        if (!(opt.beta1 >= 0 && opt.beta1 < 1) || !(opt.beta2 >= 0 && opt.beta2 < 1))
            throw error(std::string(who) + ": betas must be in [0, 1) (got " + std::to_string(opt.beta1) + ", " +
                        std::to_string(opt.beta2) + ")");
        for (const auto& p : params_) {
            exp_avg_.emplace_back(p.value.size(), T(0));
            exp_avg_sq_.emplace_back(p.value.size(), T(0));
        }
    }

    void step() {
        ++steps_;
        const double t = static_cast<double>(steps_);
        const double lr = opt_.lr, b1 = opt_.beta1, b2 = opt_.beta2, eps = opt_.eps, wd = opt_.weight_decay;
        const bool decoupled = opt_.decoupled_weight_decay;
        const double step_size = lr / (1 - std::pow(b1, t));
        const double bc2_sqrt = std::sqrt(1 - std::pow(b2, t));
        for (std::size_t j = 0; j < params_.size(); ++j) {
            T* p = params_[j].value.data();
            const T* g = params_[j].grad.data();
            T* m = exp_avg_[j].data();
            T* v = exp_avg_sq_[j].data();
            detail::optim::for_elements(params_[j].value.size(), [&](std::size_t i) {
                double pi = static_cast<double>(p[i]);
                double gi = static_cast<double>(g[i]);
                if (decoupled)
                    pi *= 1 - lr * wd;
                else if (wd != 0)
                    gi += wd * pi;
                const double mi = b1 * static_cast<double>(m[i]) + (1 - b1) * gi;
                const double vi = b2 * static_cast<double>(v[i]) + (1 - b2) * gi * gi;
                m[i] = static_cast<T>(mi);
                v[i] = static_cast<T>(vi);
                p[i] = static_cast<T>(pi - step_size * (mi / (std::sqrt(vi) / bc2_sqrt + eps)));
            });
        }
    }

    double lr() const noexcept { return opt_.lr; }
    void set_lr(double lr) {
        detail::optim::check_finite_nonneg(lr, opt_.decoupled_weight_decay ? "adamw" : "adam", "lr");
        opt_.lr = lr;
    }
    const adam_options& options() const noexcept { return opt_; }
    std::int64_t step_count() const noexcept { return steps_; }
    void set_step_count(std::int64_t n) {
        if (n < 0) throw error("adam: step count must be >= 0 (got " + std::to_string(n) + ")");
        steps_ = n;
    }
    const std::vector<param_ref<T>>& params() const noexcept { return params_; }

    // "<key>.exp_avg" and "<key>.exp_avg_sq" per parameter, in parameter order.
    std::vector<state_ref<T>> state() {
        std::vector<state_ref<T>> r;
        for (std::size_t j = 0; j < params_.size(); ++j) {
            r.push_back({params_[j].key + ".exp_avg", params_[j].shape, std::span<T>(exp_avg_[j])});
            r.push_back({params_[j].key + ".exp_avg_sq", params_[j].shape, std::span<T>(exp_avg_sq_[j])});
        }
        return r;
    }

private:
    std::vector<param_ref<T>> params_;
    adam_options opt_;
    std::vector<std::vector<T>> exp_avg_, exp_avg_sq_;
    std::int64_t steps_ = 0;
};

// AdamW: Adam with decoupled weight decay (torch.optim.AdamW).
template <class T>
    requires std::is_floating_point_v<T>
class adamw : public adam<T> {
public:
    adamw(std::vector<param_ref<T>> params, adam_options opt) : adam<T>(std::move(params), with_decoupled(opt)) {}

private:
    static adam_options with_decoupled(adam_options o) {
        o.decoupled_weight_decay = true;
        return o;
    }
};

}  // namespace ctseg::train
