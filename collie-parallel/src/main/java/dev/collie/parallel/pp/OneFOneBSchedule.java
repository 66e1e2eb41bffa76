package dev.collie.parallel.pp;

import dev.collie.core.CollieException;
import dev.collie.core.data.Batch;
import dev.collie.core.dist.Communicator;
import dev.collie.core.dist.ReduceOp;
import dev.collie.core.nn.CausalLmLoss;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.tensor.Workspaces;
import dev.collie.core.train.LanguageModel;
import dev.collie.core.train.MicroBatchRunner;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The 1F1B pipeline schedule (PipeDream-flush, as DeepSpeed's {@code TrainSchedule} and Megatron's
 * non-interleaved schedule): with {@code pp} stages and {@code m} micro-batches, stage {@code s} runs
 * {@code min(pp−s−1, m)} warm-up forwards, then alternates one forward and one backward, then drains the
 * remaining backwards. At most {@code pp−s} micro-batches are in flight on stage {@code s}, each with its
 * own {@link Tape}.
 *
 * <p>Stage {@code s} is rank {@code s} of the pipeline group's communicator. Each stage makes the micro-batch's
 * tape for its ids and padding mask and runs its layers on the model's {@link dev.collie.core.train.AroundLayers#layerTape layer tape}
 * for it (prefix tuning attaches its keys and values there; prompt tuning's is {@code virtual + seq} long), and
 * after their backward calls {@link dev.collie.core.train.AroundLayers#afterLayersBackward}. The first stage embeds the token
 * ids; every other stage receives the previous stage's activations {@code [rows·seq, hidden]} (rows and length of
 * the layer tape); the last computes the model's loss on {@link LanguageModel#labelsFor} the labels and starts
 * backward with its gradient scaled by {@code 1/m}; input gradients travel back the same way. Every stage is handed the same
 * micro-batches (it needs their shapes and padding masks; the last stage their labels). Messages are tagged
 * {@code 2i} (activation of micro-batch i) and {@code 2i+1} (its gradient). The first activation sent over a
 * link is preceded by a 16-byte header (width and data type), which the receiver keeps: the stages of a
 * pipeline create their schedules together and use them together.
 *
 * <p>Memory: forward activations must outlive the forward (other micro-batches run before their backward),
 * so forwards allocate outside any ND4J workspace; each backward runs in the per-micro-batch workspace
 * {@value #WORKSPACE}, reset when the micro-batch's input gradient has been sent, with each layer's backward
 * in a nested scratch workspace as in the single-rank runner.
 *
 * <p>A weight held by several stages (a tied output head: {@code model.embed_tokens.weight} on the first
 * and the last stage; a weight the model uses around its layers on every stage,
 * {@link dev.collie.core.train.AroundLayers#parameters()}: prefix tuning's encoder) gets a partial gradient on each;
 * {@link #syncTiedGradients()} sums them over the stages that hold it. Call it after
 * {@link #forwardBackward} (and after any data-parallel reduction has finished) and before the optimizer step.
 * The copies must start equal (every rank builds the model from the same seed or checkpoint); the same
 * summed gradient then keeps them equal. A fused-backward optimizer (LOMO) would update each copy from its
 * partial gradient inside backward: its gradient route ({@code GradientRoute}) holds such a weight's gradient
 * ({@link #sharedParameters()}) until the stages summed it, so both copies take the same update.
 *
 * <p>{@link #forwardBackwardSampled} runs the same schedule against targets the last stage samples from the
 * model's softmax (SophiaG's Hessian estimate).
 *
 * <p>All communication runs on the calling thread, one thread per rank.
 */
public final class OneFOneBSchedule implements MicroBatchRunner {
    /** The workspace each micro-batch's backward allocates in. */
    public static final String WORKSPACE = "collie-pp-backward";
    private static final String EVAL_WORKSPACE = "collie-pp-eval";

    private static final int TAG_HEADER = 1 << 29;
    private static final int TAG_EVAL = TAG_HEADER + 1;
    private static final int MAX_MICRO_BATCHES = 1 << 28;

    private final PipelineStage stage;
    private final LanguageModel model;
    private final Communicator pipe;
    private final int stages;
    private final int index;
    /** Groups of stages holding the same weight, with the names they share; null group on a non-member. */
    private final List<TiedGroup> tied = new ArrayList<>();

    /** The width and data type of the activations from the previous stage, once its header came. */
    private long inWidth = -1;
    private DataType inType;
    /** The width and data type announced to the next stage, once sent. */
    private long outWidth = -1;
    private DataType outType;

    /** Where the order of forwards and backwards is written ("F0", "B0", ...), for tests; null for none. */
    private List<String> trace;

    private record TiedGroup(int[] stages, List<String> names, Communicator comm) { }

    /** What one in-flight micro-batch keeps between its forward and its backward. */
    private record InFlight(Tape tape, CausalLmLoss lossFn, long[] outShape, DataType outType) { }

    /** {@code stage} driven over {@code pipe}, whose rank {@code r} runs stage {@code r}. */
    public OneFOneBSchedule(PipelineStage stage, Communicator pipe) {
        this(stage, stage.model(), pipe);
    }

    /**
     * As {@link #OneFOneBSchedule(PipelineStage, Communicator)}; {@code model} must be the stage's model.
     * Every stage of the pipeline constructs its schedule (sub-groups for the tied weights are formed here).
     */
    public OneFOneBSchedule(PipelineStage stage, LanguageModel model, Communicator pipe) {
        if (model != stage.model()) {
            throw new IllegalArgumentException("the stage was cut from another model");
        }
        if (pipe.size() != stage.stages() || pipe.rank() != stage.index()) {
            throw new CollieException("pipeline group mismatch: this rank is " + pipe.rank() + " of " + pipe.size()
                    + " in the pipeline communicator but holds stage " + stage.index() + " of " + stage.stages());
        }
        this.stage = stage;
        this.model = model;
        this.pipe = pipe;
        this.stages = stage.stages();
        this.index = stage.index();
        formTiedGroups();
    }

    /** Every rank knows every stage's parameters (same model, same partition): the groups come out the same. */
    private void formTiedGroups() {
        if (stages == 1) {
            return;
        }
        Map<String, List<Integer>> holders = new LinkedHashMap<>();
        for (int s = 0; s < stages; s++) {
            int st = s;
            stage.parametersOf(s).forEach((name, p) -> {
                if (p.requiresGrad()) {
                    holders.computeIfAbsent(name, k -> new ArrayList<>()).add(st);
                }
            });
        }
        Map<List<Integer>, List<String>> byStages = new LinkedHashMap<>();
        holders.forEach((name, ss) -> {
            if (ss.size() > 1) {
                byStages.computeIfAbsent(ss, k -> new ArrayList<>()).add(name);
            }
        });
        byStages.forEach((ss, names) -> {
            int[] ranks = ss.stream().mapToInt(Integer::intValue).toArray();
            tied.add(new TiedGroup(ranks, List.copyOf(names), pipe.subGroup(ranks)));
        });
    }

    public PipelineStage stage() {
        return stage;
    }

    /**
     * The names of the trainable weights this stage shares with another stage (e.g. {@code model.embed_tokens.weight},
     * {@code prompt_encoder.embedding.weight} of prefix tuning).
     */
    public List<String> tiedParameterNames() {
        List<String> out = new ArrayList<>();
        for (TiedGroup g : tied) {
            if (g.comm() != null) {
                out.addAll(g.names());
            }
        }
        return Collections.unmodifiableList(out);
    }

    /** The trainable weights this stage shares with another stage, in the order {@link #syncTiedGradients()} sums them. */
    public List<Parameter> sharedParameters() {
        List<Parameter> out = new ArrayList<>();
        for (String name : tiedParameterNames()) {
            out.add(stage.parameters().get(name));
        }
        return out;
    }

    /**
     * Bytes this stage has sent so far summing the gradients of the weights it shares with other stages
     * ({@link #syncTiedGradients()}).
     */
    public long sharedGradientBytesSent() {
        long n = 0;
        for (TiedGroup g : tied) {
            if (g.comm() != null) {
                n += g.comm().bytesSent();
            }
        }
        return n;
    }

    /** Records the order of this stage's forwards ({@code F<i>}) and backwards ({@code B<i>}) into {@code sink}. */
    void traceTo(List<String> sink) {
        this.trace = sink;
    }

    // ---- training ------------------------------------------------------------------------------------------

    @Override
    public double forwardBackward(List<Batch> micro) {
        return schedule(micro, null);
    }

    /**
     * The 1F1B schedule against targets the last stage draws from the model's own softmax
     * ({@link CausalLmLoss#sampleTargets}, seeded by {@code seed} and each row's tokens; under tensor parallelism
     * the same targets on every rank of the stage); see {@link dev.collie.core.train.MicroBatchRunner#forwardBackwardSampled}.
     */
    @Override
    public double forwardBackwardSampled(List<Batch> micro, long seed) {
        return schedule(micro, seed);
    }

    private double schedule(List<Batch> micro, Long seed) {
        int m = micro.size();
        if (m == 0) {
            throw new IllegalArgumentException("no micro-batches");
        }
        if (m >= MAX_MICRO_BATCHES) {
            throw new IllegalArgumentException("at most " + (MAX_MICRO_BATCHES - 1) + " micro-batches, got " + m);
        }
        InFlight[] flight = new InFlight[m];
        double[] losses = new double[m];
        int warmup = Math.min(stages - index - 1, m);
        int nextForward = 0;
        int nextBackward = 0;
        for (; nextForward < warmup; nextForward++) {
            flight[nextForward] = forward(micro, nextForward, losses, seed);
        }
        while (nextForward < m) {
            flight[nextForward] = forward(micro, nextForward, losses, seed);
            nextForward++;
            backward(micro, nextBackward, flight[nextBackward]);
            flight[nextBackward++] = null;
        }
        while (nextBackward < m) {
            backward(micro, nextBackward, flight[nextBackward]);
            flight[nextBackward++] = null;
        }
        double mean = 0;
        if (stage.isLast()) {
            for (double l : losses) {
                mean += l;
            }
            mean /= m;
        }
        return broadcastLoss(mean);
    }

    /**
     * The forward of micro-batch {@code i}: receive (or embed), run the layers, send on (or take the loss: against
     * the labels, or with {@code seed} against targets sampled from the logits).
     */
    private InFlight forward(List<Batch> micro, int i, double[] losses, Long seed) {
        if (trace != null) {
            trace.add("F" + i);
        }
        Batch b = micro.get(i);
        Tape ids = MicroBatchRunner.withPaddingMask(
                Tape.forTraining(b.rows(), b.seqLen()).setLastMicroBatch(i == micro.size() - 1), b);
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            Tape tape = model.aroundLayers().layerTape(ids);
            INDArray x = stage.isFirst() ? b.inputIds() : receiveActivation(tape, 2 * i, "forward of micro-batch " + i);
            INDArray y = stage.forward(tape, x);
            if (stage.isLast()) {
                CausalLmLoss lossFn = model.loss();
                losses[i] = MicroBatchRunner.microBatchLoss(model, lossFn, tape, y, b, seed);
                return new InFlight(tape, lossFn, null, null);
            }
            sendActivation(y, 2 * i);
            return new InFlight(tape, null, y.shape(), y.dataType());
        }
    }

    /** The backward of micro-batch {@code i}: loss gradient (or receive it), run the layers back, send the input gradient. */
    private void backward(List<Batch> micro, int i, InFlight f) {
        if (trace != null) {
            trace.add("B" + i);
        }
        try (MemoryWorkspace ws = Workspaces.open(WORKSPACE)) {
            INDArray dy;
            if (stage.isLast()) {
                dy = f.lossFn().backward(f.tape(), 1.0 / micro.size());
            } else {
                dy = Nd4j.createUninitialized(f.outType(), f.outShape());
                recv(dy, index + 1, 2 * i + 1, "backward of micro-batch " + i);
            }
            INDArray dx = stage.backward(f.tape(), dy);
            if (!stage.isFirst()) {
                send(contiguous(dx), index - 1, 2 * i + 1, "backward of micro-batch " + i);
            }
            model.aroundLayers().afterLayersBackward(f.tape());
        }
    }

    /**
     * Sums, over the stages that hold it, the gradient of each weight held by several stages (a tied
     * embedding and output head; prefix tuning's encoder, held by every stage), in place. Every stage of the pipeline must call it, after backward (and after
     * any data-parallel reduction of the step) and before the optimizer step; stages without such a weight
     * return at once. With one stage there is nothing to do.
     *
     * @throws CollieException when a shared weight has no gradient (no backward ran), or a peer does not answer
     */
    public void syncTiedGradients() {
        for (TiedGroup g : tied) {
            if (g.comm() == null) {
                continue;
            }
            Map<String, Parameter> mine = stage.parameters();
            for (String name : g.names()) {
                Parameter p = mine.get(name);
                INDArray grad = p.grad();
                if (grad == null) {
                    throw new CollieException("pipeline stage " + index + " has no gradient for " + name
                            + ", which it shares with stages " + Arrays.toString(g.stages())
                            + "; call syncTiedGradients() after forwardBackward()");
                }
                g.comm().allReduce(grad, ReduceOp.SUM);
            }
        }
    }

    // ---- evaluation ----------------------------------------------------------------------------------------

    /** The token-mean loss of {@code b}, forward only through the stages; the same value on every stage. */
    @Override
    public double loss(Batch b) {
        double loss = 0;
        try (MemoryWorkspace ws = Workspaces.open(EVAL_WORKSPACE)) {
            Tape ids = MicroBatchRunner.withPaddingMask(Tape.forInference(b.rows(), b.seqLen()), b);
            Tape tape = model.aroundLayers().layerTape(ids);
            INDArray x = stage.isFirst() ? b.inputIds() : receiveActivation(tape, TAG_EVAL, "evaluation forward");
            INDArray y = stage.forward(tape, x);
            if (stage.isLast()) {
                loss = model.loss().forward(tape, y, model.labelsFor(b.labels()));
            } else {
                sendActivation(y, TAG_EVAL);
            }
        }
        return broadcastLoss(loss);
    }

    // ---- messages ------------------------------------------------------------------------------------------

    private double broadcastLoss(double loss) {
        if (stages == 1) {
            return loss;
        }
        INDArray v;
        try (MemoryWorkspace ignored = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            v = Nd4j.createFromArray(new double[] {loss});
        }
        try {
            pipe.broadcast(v, stages - 1);
        } catch (CollieException e) {
            throw new CollieException(where("loss broadcast") + e.getMessage(), e);
        }
        return v.getDouble(0);
    }

    /** Sends this stage's output to the next stage, after the link's header the first time. */
    private void sendActivation(INDArray y, int tag) {
        if (y.rank() != 2) {
            throw new IllegalStateException("stage " + index + " output must be [rows·seq, hidden], got "
                    + Arrays.toString(y.shape()));
        }
        if (outWidth < 0) {
            INDArray header = Nd4j.createFromArray(new long[] {y.size(1), y.dataType().ordinal()});
            send(header, index + 1, TAG_HEADER, "activation header");
            outWidth = y.size(1);
            outType = y.dataType();
        } else if (y.size(1) != outWidth || y.dataType() != outType) {
            throw new IllegalStateException("stage " + index + " output changed from [*, " + outWidth + "] "
                    + outType + " to " + Arrays.toString(y.shape()) + " " + y.dataType());
        }
        send(contiguous(y), index + 1, tag, "forward (tag " + tag + ")");
    }

    /** Receives the previous stage's output for the layer tape {@code tape}: {@code [rows·seq, width]}. */
    private INDArray receiveActivation(Tape tape, int tag, String what) {
        if (inWidth < 0) {
            INDArray header = Nd4j.createUninitialized(DataType.INT64, 2);
            recv(header, index - 1, TAG_HEADER, "activation header");
            inWidth = header.getLong(0);
            inType = DataType.values()[(int) header.getLong(1)];
        }
        INDArray x = Nd4j.createUninitialized(inType, (long) tape.batchSize() * tape.seqLen(), inWidth);
        recv(x, index - 1, tag, what);
        return x;
    }

    private static INDArray contiguous(INDArray a) {
        return a.ordering() == 'c' && Shape.hasDefaultStridesForShape(a) && a.offset() == 0 ? a : a.dup('c');
    }

    private void send(INDArray a, int dst, int tag, String what) {
        try {
            pipe.send(a, dst, tag);
        } catch (CollieException e) {
            throw new CollieException(where(what) + e.getMessage(), e);
        }
    }

    private void recv(INDArray into, int src, int tag, String what) {
        try {
            pipe.recv(into, src, tag);
        } catch (CollieException e) {
            throw new CollieException(where(what) + e.getMessage(), e);
        }
    }

    private String where(String what) {
        return "pipeline stage " + index + " of " + stages + ", " + what + ": ";
    }

    /** Nothing to stop: the schedule runs on the caller's thread. */
    @Override
    public void close() {
    }
}
