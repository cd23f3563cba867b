// A custom optimizer written as a user would: SGD with momentum 0.9 (no dampening), state slot 0
// holding the momentum buffer. Registered so the template is validated with a real `update`, and
// used by tests/optim.rs to check the custom path against the built-in SGD.

const MOMENTUM: f32 = 0.9;

fn update(i: u32, p: f32, g: f32, step: u32, lr: f32) -> f32 {
    var b = g;
    if (step > 1u) {
        b = state_get(0u, i) * MOMENTUM + 1.0 * g;
    }
    state_set(0u, i, b);
    return p - lr * b;
}
