// Learning-rate schedules as closed forms of the step (or epoch) index t:
//   constant: lr
//   step:     lr * gamma^floor(t / step_size)                         (StepLR)
//   cosine:   eta_min + (lr - eta_min) (1 + cos(pi t / T_max)) / 2
//             (CosineAnnealingLR's closed form; periodic past T_max)
//   poly:     lr * (1 - t / T)^power, 0 from t >= T               (nnU-Net)
#pragma once
#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>

#include "ctseg/error.hpp"

namespace ctseg::train {

enum class schedule_kind { constant, step, cosine, poly };

class lr_schedule {
public:
    static lr_schedule constant(double lr) {
        check_lr(lr);
        lr_schedule s;
        s.kind_ = schedule_kind::constant;
        s.base_ = lr;
        return s;
    }

    static lr_schedule step(double lr, std::size_t step_size, double gamma) {
        check_lr(lr);
        if (step_size == 0) throw error("lr schedule 'step': step_size must be >= 1");
        if (!std::isfinite(gamma) || gamma < 0)
            throw error("lr schedule 'step': gamma must be finite and >= 0 (got " + std::to_string(gamma) + ")");
        lr_schedule s;
        s.kind_ = schedule_kind::step;
        s.base_ = lr;
        s.period_ = step_size;
        s.gamma_ = gamma;
        return s;
    }

    static lr_schedule cosine(double lr, std::size_t t_max, double eta_min = 0) {
        check_lr(lr);
        if (t_max == 0) throw error("lr schedule 'cosine': T_max must be >= 1");
        if (!std::isfinite(eta_min) || eta_min < 0)
            throw error("lr schedule 'cosine': eta_min must be finite and >= 0 (got " + std::to_string(eta_min) + ")");
        lr_schedule s;
        s.kind_ = schedule_kind::cosine;
        s.base_ = lr;
        s.period_ = t_max;
        s.eta_min_ = eta_min;
        return s;
    }

    static lr_schedule poly(double lr, std::size_t total, double power = 0.9) {
        check_lr(lr);
        if (total == 0) throw error("lr schedule 'poly': the total number of steps must be >= 1");
        if (!std::isfinite(power) || power <= 0)
            throw error("lr schedule 'poly': power must be finite and > 0 (got " + std::to_string(power) + ")");
        lr_schedule s;
        s.kind_ = schedule_kind::poly;
        s.base_ = lr;
        s.period_ = total;
        s.power_ = power;
        return s;
    }

    double lr_at(std::size_t t) const {
        switch (kind_) {
            case schedule_kind::constant: return base_;
            case schedule_kind::step: return base_ * std::pow(gamma_, static_cast<double>(t / period_));
            case schedule_kind::cosine:
                return eta_min_ + (base_ - eta_min_) *
                                      (1 + std::cos(std::numbers::pi * static_cast<double>(t) /
                                                    static_cast<double>(period_))) /
                                      2;
            case schedule_kind::poly:
                if (t >= period_) return 0.0;
                return base_ * std::pow(1 - static_cast<double>(t) / static_cast<double>(period_), power_);
        }
        return base_;
    }

    schedule_kind kind() const noexcept { return kind_; }
    double base_lr() const noexcept { return base_; }
    // step_size (step), T_max (cosine) or the total (poly); 0 for constant.
    std::size_t period() const noexcept { return period_; }
    double gamma() const noexcept { return gamma_; }
    double eta_min() const noexcept { return eta_min_; }
    double power() const noexcept { return power_; }

private:
    lr_schedule() = default;

    static void check_lr(double lr) {
        if (!std::isfinite(lr) || lr < 0)
            throw error("lr schedule: the learning rate must be finite and >= 0 (got " + std::to_string(lr) + ")");
    }

    schedule_kind kind_ = schedule_kind::constant;
    double base_ = 0;
    std::size_t period_ = 0;
    double gamma_ = 1;
    double eta_min_ = 0;
    double power_ = 0.9;
};

}  // namespace ctseg::train
